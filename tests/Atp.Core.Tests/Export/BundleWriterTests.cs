using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Export;
using Atp.Integrity;

namespace Atp.Core.Tests.Export;

/// <summary>The bundle writer over a real SQLite store: what it writes, and how a job resumes after a crash.</summary>
public sealed class BundleWriterTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Writes_a_complete_bundle_ending_at_the_latest_checkpoint_with_the_exact_leaves()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(300);
        await log.SealAsync();
        await log.AppendAsync(50); // not yet sealed: not in the bundle
        var writer = new BundleWriter(log.Store, log.Clock);

        var plan = await writer.PlanCompleteAsync(BundleLog.TenantId, 100, null, 100, "job-1", None);
        Assert.NotNull(plan);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        var manifest = await writer.WriteAsync(plan, log.Scratch("staging"), log.Signer, path, None);

        var members = await ReadMembersAsync(path);
        Assert.Equal(["manifest.json", "manifest.sig", "checkpoint", "hashes/000000.bin", "entries/000000.ndjson"], members.Keys);
        Assert.Equal(manifest.ToUtf8Bytes(), members["manifest.json"]);
        Assert.Equal((byte)'\n', members["manifest.json"][^1]);
        Assert.True(SignedNote.TryParse(members["manifest.sig"], out var note, out _));
        Assert.Equal(Encoding.UTF8.GetString(members["manifest.json"]), note.Text);
        Assert.True(note.Verify([log.Signer.Verifier], out _).IsValid);
        var stored = await log.Store.GetLatestCheckpointAsync(BundleLog.TenantId, None);
        Assert.Equal(stored!.Note, Encoding.UTF8.GetString(members["checkpoint"]));

        Assert.Equal((100UL, 300UL, 300UL, true, 200UL, "job-1"), (manifest.From, manifest.To, manifest.TreeSize, manifest.Complete, manifest.Events, manifest.ExportId));
        Assert.Equal($"{BundleLog.Origin}/{BundleLog.TenantId}", manifest.Origin);
        Assert.Equal(["hashes/000000.bin", "entries/000000.ndjson"], manifest.Files.Select(f => f.Name));
        var (hashesFile, file) = (manifest.Files[0], manifest.Files[1]);
        var entries = members[file.Name];
        var hashes = members[hashesFile.Name];
        Assert.Equal((100UL, 200UL, (long)entries.Length), (file.FirstIndex, file.Count, file.Size));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(entries)), file.Sha256);
        Assert.Equal((100UL, 200UL, 200L * 32), (hashesFile.FirstIndex, hashesFile.Count, hashesFile.Size));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(hashes)), hashesFile.Sha256);

        var lines = Encoding.UTF8.GetString(entries).Split('\n');
        Assert.Equal(201, lines.Length);
        Assert.Equal(string.Empty, lines[^1]);
        var range = new CompactRange(manifest.From, [.. manifest.Edge.Select(Base64Hash)]);
        for (var i = 0; i < 200; i++)
        {
            var entry = await log.Store.GetEntryAsync(BundleLog.TenantId, 100 + (ulong)i, None);
            Assert.Equal(entry!.Leaf, Encoding.UTF8.GetBytes(lines[i]));
            Assert.Equal(entry.LeafHash.ToArray(), hashes[(i * 32)..((i + 1) * 32)]);
            range.Append(entry.LeafHash);
        }

        Assert.Equal(manifest.RootHash, range.Root().ToBase64());
        // The previous bundle ended where this one starts: its root is the edge folded.
        Assert.Equal(100UL, manifest.Previous!.TreeSize);
        Assert.Equal(manifest.Previous.RootHash, new CompactRange(100, [.. manifest.Edge.Select(Base64Hash)]).Root().ToBase64());
        Assert.True(ConsistencyProof.Verify(100, 300, [.. manifest.Previous.ConsistencyProof.Select(Base64Hash)], Base64Hash(manifest.Previous.RootHash), range.Root()).IsValid);
    }

    [Fact]
    public async Task A_resumed_job_keeps_complete_files_redoes_a_partial_one_and_packs_the_same_bundle()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(BundleManifest.MaxEntriesPerFile + 10);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var plan = await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None);
        Assert.NotNull(plan);
        Assert.Equal(2, plan.FileCount);
        var staging = log.Scratch("staging");

        await writer.WriteEntriesFileAsync(plan, 0, staging, None);
        var first = Path.Combine(staging, BundleManifest.EntriesFileName(0));
        var firstWritten = File.GetLastWriteTimeUtc(first);
        // A crash in the middle of file 1 left torn temporary files behind, and a hashes file whose entries file was
        // never renamed into place.
        await File.WriteAllTextAsync(Path.Combine(staging, BundleManifest.EntriesFileName(1)) + ".partial", "{\"torn", None);
        await File.WriteAllBytesAsync(Path.Combine(staging, BundleManifest.HashesFileName(1)) + ".partial", new byte[7], None);
        Assert.Equal(1, BundleWriter.FirstUnwrittenFile(plan, staging));
        await File.WriteAllBytesAsync(Path.Combine(staging, BundleManifest.HashesFileName(1)), new byte[7], None);
        Assert.Equal(1, BundleWriter.FirstUnwrittenFile(plan, staging));

        var path = Path.Combine(log.Scratch("out"), "b.tar");
        var manifest = await writer.WriteAsync(plan, staging, log.Signer, path, None);

        Assert.Equal(firstWritten, File.GetLastWriteTimeUtc(first));
        Assert.Equal(2, BundleWriter.FirstUnwrittenFile(plan, staging));
        Assert.Equal(
            [
                ("hashes/000000.bin", 0UL, (ulong)BundleManifest.MaxEntriesPerFile),
                ("entries/000000.ndjson", 0UL, (ulong)BundleManifest.MaxEntriesPerFile),
                ("hashes/000001.bin", (ulong)BundleManifest.MaxEntriesPerFile, 10UL),
                ("entries/000001.ndjson", (ulong)BundleManifest.MaxEntriesPerFile, 10UL),
            ],
            manifest.Files.Select(f => (f.Name, f.FirstIndex, f.Count)));
        Assert.Empty(manifest.Edge);
        Assert.Null(manifest.Previous);

        // Packing again from the same plan and staged files gives the same bytes: a restarted job's bundle is the same.
        var again = Path.Combine(log.Scratch("out2"), "b.tar");
        await writer.WriteAsync(plan, staging, log.Signer, again, None);
        var members = await ReadMembersAsync(path);
        var membersAgain = await ReadMembersAsync(again);
        Assert.Equal(members["manifest.json"], membersAgain["manifest.json"]);
        Assert.Equal(members["entries/000001.ndjson"], membersAgain["entries/000001.ndjson"]);
        Assert.Equal(members["hashes/000001.bin"], membersAgain["hashes/000001.bin"]);
        Assert.Equal(10 * 32, members["hashes/000001.bin"].Length);

        await using var bundle = File.OpenRead(path);
        var verified = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);
        Assert.True(verified.IsValid, verified.Failure?.ToString());
        Assert.Equal(manifest.ToUtf8Bytes(), verified.Manifest!.ToUtf8Bytes());
    }

    [Fact]
    public async Task Writes_a_filtered_bundle_with_an_inclusion_proof_per_entry()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(40);
        await log.SealAsync();
        await log.AppendAsync(5);
        var writer = new BundleWriter(log.Store, log.Clock);
        using var filters = JsonDocument.Parse("{\"action\":\"user.login\"}");

        var plan = await writer.PlanFilteredAsync(BundleLog.TenantId, 0, 40, [1, 7, 39], filters.RootElement, null, null, None);
        Assert.NotNull(plan);
        var path = Path.Combine(log.Scratch("out"), "f.tar");
        var manifest = await writer.WriteAsync(plan, log.Scratch("staging"), log.Signer, path, None);

        Assert.False(manifest.Complete);
        Assert.Equal("user.login", manifest.Filters!.Value.GetProperty("action").GetString());
        Assert.Equal(["entries/000000.ndjson", "proofs/000000.ndjson"], manifest.Files.Select(f => f.Name));
        var members = await ReadMembersAsync(path);
        Assert.Equal(["manifest.json", "manifest.sig", "checkpoint", "entries/000000.ndjson", "proofs/000000.ndjson"], members.Keys);
        var leaves = Encoding.UTF8.GetString(members["entries/000000.ndjson"]).TrimEnd('\n').Split('\n');
        var proofs = Encoding.UTF8.GetString(members["proofs/000000.ndjson"]).TrimEnd('\n').Split('\n');
        Assert.Equal(3, leaves.Length);
        ulong[] indexes = [1, 7, 39];
        for (var i = 0; i < 3; i++)
        {
            using var proof = JsonDocument.Parse(proofs[i]);
            Assert.Equal(indexes[i], proof.RootElement.GetProperty("index").GetUInt64());
            Hash[] hashes = [.. proof.RootElement.GetProperty("hashes").EnumerateArray().Select(h => Base64Hash(h.GetString()!))];
            Assert.True(InclusionProof.Verify(indexes[i], 40, MerkleHasher.HashLeaf(Encoding.UTF8.GetBytes(leaves[i])), hashes, Base64Hash(manifest.RootHash)).IsValid);
        }
    }

    [Fact]
    public async Task Refuses_to_pack_a_staged_hashes_file_that_does_not_list_its_entries()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(10);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var plan = (await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!;
        var staging = log.Scratch("staging");
        await writer.WriteEntriesFileAsync(plan, 0, staging, None);
        var hashesPath = Path.Combine(staging, BundleManifest.HashesFileName(0));
        var hashes = await File.ReadAllBytesAsync(hashesPath, None);
        hashes[3 * 32] ^= 0x01;
        await File.WriteAllBytesAsync(hashesPath, hashes, None);
        var path = Path.Combine(log.Scratch("out"), "b.tar");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteAsync(plan, staging, log.Signer, path, None));

        Assert.Equal("Staged entries/000000.ndjson line 4 does not match its staged hashes file.", refused.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Plans_nothing_when_no_stored_checkpoint_is_large_enough()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(10);
        var writer = new BundleWriter(log.Store, log.Clock);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None));

        await log.SealAsync();
        await log.AppendAsync(10);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 0, 11, null, null, None));
        Assert.Equal(10UL, (await writer.PlanCompleteAsync(BundleLog.TenantId, 0, 10, null, null, None))!.TreeSize);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 11, null, null, null, None));
    }

    internal static Hash Base64Hash(string base64) => Hash.TryParseBase64(base64, out var hash) ? hash : throw new FormatException(base64);

    internal static async Task<Dictionary<string, byte[]>> ReadMembersAsync(string path)
    {
        var members = new Dictionary<string, byte[]>();
        await using var stream = File.OpenRead(path);
        await using var tar = new TarReader(stream);
        while (await tar.GetNextEntryAsync() is { } entry)
        {
            using var copy = new MemoryStream();
            if (entry.DataStream is { } data)
            {
                await data.CopyToAsync(copy);
            }

            members.Add(entry.Name, copy.ToArray());
        }

        return members;
    }
}
