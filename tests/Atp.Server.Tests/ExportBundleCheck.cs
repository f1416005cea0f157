using System.Formats.Tar;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Export;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// An independent check of an export bundle by the format's rules (the bundle format note: members, signed manifest,
/// signed checkpoint, file digests, the root rebuilt from the edge and every leaf, or each filtered entry's inclusion
/// proof, and the consistency proof from the previous checkpoint), written from Atp.Integrity alone.
/// </summary>
internal sealed record ExportBundleCheck(BundleManifest Manifest, IReadOnlyList<byte[]> Leaves, IReadOnlyDictionary<string, byte[]> Members)
{
    /// <summary>The cell's verifier keys, as an auditor fetches them.</summary>
    public static async Task<NoteVerifier[]> VerifiersAsync(HttpClient client)
    {
        var keys = await client.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        return [.. keys.GetProperty("keys").EnumerateArray().Select(k => NoteVerifier.Parse(k.GetProperty("verifierKey").GetString()!))];
    }

    /// <summary>
    /// Checks the bundle twice: with ATP's own <see cref="BundleVerifier"/> (what <c>atp verify bundle</c> runs, pinned
    /// to the cell's keys, against <paramref name="previous"/> when given), and independently by the rules below.
    /// </summary>
    public static async Task<ExportBundleCheck> VerifyAsync(byte[] bundle, IReadOnlyList<NoteVerifier> trusted, BundleManifest? previous = null)
    {
        var verification = await new BundleVerifier(trusted).VerifyAsync(new MemoryStream(bundle), previous, null, CancellationToken.None);
        Assert.True(verification.IsValid, verification.Failure?.ToString());
        Assert.True(verification.KeyPinned);
        return Verify(bundle, trusted);
    }

    public static ExportBundleCheck Verify(byte[] bundle, IReadOnlyList<NoteVerifier> trusted)
    {
        var members = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var order = new List<string>();
        using (var tar = new TarReader(new MemoryStream(bundle)))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                Assert.Equal(TarEntryType.RegularFile, entry.EntryType);
                Assert.DoesNotContain("..", entry.Name, StringComparison.Ordinal);
                Assert.False(entry.Name.StartsWith('/'), entry.Name);
                using var data = new MemoryStream();
                entry.DataStream?.CopyTo(data);
                Assert.True(members.TryAdd(entry.Name, data.ToArray()), $"duplicate member {entry.Name}");
                order.Add(entry.Name);
            }
        }

        Assert.Equal([BundleManifest.ManifestName, BundleManifest.SignatureName, BundleManifest.CheckpointName], order.Take(3));
        var manifestBytes = members[BundleManifest.ManifestName];
        Assert.Equal((byte)'\n', manifestBytes[^1]);
        var manifest = BundleManifest.TryParse(manifestBytes, out var error);
        Assert.True(manifest is not null, error);
        Assert.Equal(BundleManifest.CurrentFormat, manifest!.Format);

        Assert.True(SignedNote.TryParse(members[BundleManifest.SignatureName], out var signature, out error), error);
        Assert.Equal(Encoding.UTF8.GetString(manifestBytes), signature!.Text);
        Assert.True(signature.Verify(trusted, out _).IsValid, "manifest.sig does not verify against the cell's key");

        var opened = Checkpoint.Open(members[BundleManifest.CheckpointName], trusted, out var checkpoint);
        Assert.True(opened.IsValid, opened.Failure);
        Assert.Equal(checkpoint!.Origin, manifest.Origin);
        Assert.Equal(checkpoint.Size, manifest.TreeSize);
        Assert.Equal(checkpoint.Root.ToBase64(), manifest.RootHash);

        Assert.Equal(order.Skip(3), manifest.Files.Select(f => f.Name));
        var leaves = new List<byte[]>();
        var range = manifest.Complete ? new CompactRange(manifest.From, manifest.Edge.Select(Base64Hash).ToArray()) : null;
        var previousIndex = (long)manifest.From - 1;
        foreach (var file in manifest.Files)
        {
            var bytes = members[file.Name];
            Assert.Equal(file.Size, bytes.Length);
            Assert.Equal(file.Sha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
            if (!file.Name.StartsWith("entries/", StringComparison.Ordinal))
            {
                continue;
            }

            var lines = Lines(bytes);
            Assert.Equal(file.Count, (ulong)lines.Count);

            // A complete bundle lists each entries file's leaf hashes in the hashes file just before it.
            var listed = manifest.Complete ? members[file.Name.Replace("entries/", "hashes/", StringComparison.Ordinal).Replace(".ndjson", ".bin", StringComparison.Ordinal)] : null;
            Assert.True(listed is null || order.IndexOf(file.Name) > 0 && order[order.IndexOf(file.Name) - 1] == file.Name.Replace("entries/", "hashes/", StringComparison.Ordinal).Replace(".ndjson", ".bin", StringComparison.Ordinal), $"{file.Name} has no hashes file before it");
            Assert.True(listed is null || listed.Length == lines.Count * 32, $"{file.Name}'s hashes file does not list {lines.Count} hashes");
            string[]? proofs = manifest.Complete ? null : Encoding.UTF8.GetString(members[file.Name.Replace("entries/", "proofs/", StringComparison.Ordinal)]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 0; i < lines.Count; i++)
            {
                var leafHash = MerkleHasher.HashLeaf(lines[i]);
                if (range is not null)
                {
                    Assert.Equal(leafHash.ToArray(), listed![(i * 32)..((i + 1) * 32)]);
                    range.Append(leafHash);
                }
                else
                {
                    using var proof = JsonDocument.Parse(proofs![i]);
                    var index = proof.RootElement.GetProperty("index").GetUInt64();
                    Assert.True((long)index > previousIndex, "filtered entries are in index order");
                    previousIndex = (long)index;
                    var hashes = proof.RootElement.GetProperty("hashes").EnumerateArray().Select(h => Base64Hash(h.GetString()!)).ToArray();
                    Assert.True(InclusionProof.Verify(index, manifest.TreeSize, leafHash, hashes, checkpoint.Root).IsValid, $"inclusion of {index}");
                }

                leaves.Add(lines[i]);
            }
        }

        Assert.Equal(manifest.Events, (ulong)leaves.Count);
        if (range is not null)
        {
            Assert.Equal(manifest.TreeSize, manifest.To);
            Assert.Equal(manifest.To - manifest.From, (ulong)leaves.Count);
            Assert.Equal(checkpoint.Root, range.Root());
        }

        if (manifest.Previous is { } previous)
        {
            var previousRoot = Base64Hash(previous.RootHash);
            if (manifest.Complete && previous.TreeSize == manifest.From)
            {
                Assert.Equal(previousRoot, new CompactRange(manifest.From, manifest.Edge.Select(Base64Hash).ToArray()).Root());
            }

            var proof = previous.ConsistencyProof.Select(Base64Hash).ToArray();
            Assert.True(ConsistencyProof.Verify(previous.TreeSize, manifest.TreeSize, proof, previousRoot, checkpoint.Root).IsValid, "consistency with the previous checkpoint");
        }

        return new ExportBundleCheck(manifest, leaves, members);
    }

    private static Hash Base64Hash(string text)
    {
        Assert.True(Hash.TryParseBase64(text, out var hash), text);
        return hash;
    }

    private static List<byte[]> Lines(byte[] bytes)
    {
        var lines = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\n')
            {
                lines.Add(bytes[start..i]);
                start = i + 1;
            }
        }

        Assert.Equal(bytes.Length, start);
        return lines;
    }
}
