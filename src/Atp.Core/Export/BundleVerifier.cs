using System.Formats.Tar;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Core.Export;

/// <summary>
/// Verifies an export bundle (docs/export-bundle.md) offline, streaming over the tar without extracting it: memory is
/// bounded by a few read batches (see <see cref="EntriesFileCheck"/>) and the leaf hashes of one entries file (a complete bundle's listed hashes file,
/// or those recomputed for a filtered bundle's proofs). Checks the
/// member layout, the manifest signature, the signed checkpoint, every file's size and SHA-256, and either the root
/// rebuilt from the edge and every leaf (complete bundles) or every entry's inclusion proof (filtered bundles), and the
/// consistency proof from the previous bundle's checkpoint. The first failure is reported, naming the member (and for
/// an entry its index and line).
/// </summary>
public sealed class BundleVerifier
{
    private const int MaxManifestBytes = 8 << 20;
    private const string EntriesPrefix = "entries/";
    private const string ProofsPrefix = "proofs/";
    private const string HashesPrefix = "hashes/";
    private readonly IReadOnlyList<NoteVerifier> _keys;

    /// <param name="keys">
    /// The keys the bundle must be signed with; when empty the key the manifest names is used (trust on first use,
    /// reported as <see cref="BundleVerification.KeyPinned"/> false).
    /// </param>
    public BundleVerifier(IReadOnlyList<NoteVerifier> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = keys;
    }

    /// <summary>
    /// Verifies the whole bundle. <paramref name="previous"/> is the verified manifest of the bundle this one must
    /// continue (its checkpoint must be this one's <c>previous</c>); <paramref name="progress"/> gets the bytes read.
    /// </summary>
    public Task<BundleVerification> VerifyAsync(Stream bundle, BundleManifest? previous, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return VerifyCoreAsync(bundle, previous, progress, headOnly: false, cancellationToken);
    }

    /// <summary>Verifies only the signed head of a bundle (manifest, signature, checkpoint), e.g. an earlier bundle named by --previous.</summary>
    public Task<BundleVerification> VerifyHeadAsync(Stream bundle, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return VerifyCoreAsync(bundle, null, null, headOnly: true, cancellationToken);
    }

    private async Task<BundleVerification> VerifyCoreAsync(Stream bundle, BundleManifest? previous, IProgress<long>? progress, bool headOnly, CancellationToken cancellationToken)
    {
        // System.Formats.Tar reads past header checksums, padding and the end marker; check them first so that no byte
        // of a bundle file goes unchecked (a stream that cannot seek gets the member checks only).
        if (bundle.CanSeek && bundle.Position == 0)
        {
            if (await TarFraming.CheckAsync(bundle, cancellationToken).ConfigureAwait(false) is { } framing)
            {
                return BundleVerification.Failed(framing);
            }

            bundle.Position = 0;
        }

        var tar = new TarReader(bundle, leaveOpen: true);
        await using (tar.ConfigureAwait(false))
        {
            try
            {
                return await ReadAsync(tar, bundle, previous, progress, headOnly, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or OverflowException)
            {
                // A damaged tar header (checksum, size, type or name field) or a truncated file.
                return BundleVerification.Failed(new BundleFailure("tar", $"the bundle is not a readable tar file: {e.Message}"));
            }
        }
    }

    private async Task<BundleVerification> ReadAsync(TarReader tar, Stream bundle, BundleManifest? previous, IProgress<long>? progress, bool headOnly, CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);

        // 1. manifest.json, 2. manifest.sig, 3. checkpoint: small, read whole (bounded).
        var (manifestEntry, failure) = await NextAsync(tar, BundleManifest.ManifestName, seen, cancellationToken).ConfigureAwait(false);
        if (failure is not null)
        {
            return BundleVerification.Failed(failure);
        }

        var manifestBytes = await ReadSmallAsync(manifestEntry!, MaxManifestBytes, cancellationToken).ConfigureAwait(false);
        if (manifestBytes is null)
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.ManifestName, $"larger than {MaxManifestBytes} bytes"));
        }

        if (manifestBytes.Length == 0 || manifestBytes[^1] != (byte)'\n' || manifestBytes.AsSpan(0, manifestBytes.Length - 1).Contains((byte)'\n'))
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.ManifestName, "does not end with exactly one newline"));
        }

        var manifest = BundleManifest.TryParse(manifestBytes.AsSpan(0, manifestBytes.Length - 1), out var parseError);
        if (manifest is null)
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.ManifestName, parseError));
        }

        (var sigEntry, failure) = await NextAsync(tar, BundleManifest.SignatureName, seen, cancellationToken).ConfigureAwait(false);
        if (failure is not null)
        {
            return BundleVerification.Failed(failure);
        }

        var sigBytes = await ReadSmallAsync(sigEntry!, SignedNote.MaxNoteBytes + MaxManifestBytes, cancellationToken).ConfigureAwait(false);
        var (trusted, pinned, keyFailure) = TrustedKeys(manifest);
        if (keyFailure is not null)
        {
            return BundleVerification.Failed(keyFailure, manifest);
        }

        if (sigBytes is null)
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.SignatureName, "too large for a signed note"), manifest);
        }

        if (!SignedNote.TryParse(sigBytes, out var note, out var noteError))
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.SignatureName, $"not a signed note: {noteError}"), manifest);
        }

        if (!System.Text.Encoding.UTF8.GetBytes(note.Text).AsSpan().SequenceEqual(manifestBytes))
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.SignatureName, "the signed text is not manifest.json"), manifest);
        }

        var signed = note.Verify(trusted, out _);
        if (!signed.IsValid)
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.SignatureName, $"the manifest signature does not verify: {signed.Failure}"), manifest);
        }

        (var checkpointEntry, failure) = await NextAsync(tar, BundleManifest.CheckpointName, seen, cancellationToken).ConfigureAwait(false);
        if (failure is not null)
        {
            return BundleVerification.Failed(failure, manifest);
        }

        var checkpointBytes = await ReadSmallAsync(checkpointEntry!, SignedNote.MaxNoteBytes, cancellationToken).ConfigureAwait(false) ?? [];
        var opened = Checkpoint.Open(checkpointBytes, trusted, out var checkpoint);
        if (!opened.IsValid)
        {
            return BundleVerification.Failed(new BundleFailure(BundleManifest.CheckpointName, $"the signed checkpoint does not verify: {opened.Failure}"), manifest);
        }

        var key = trusted.First(k => note.Signatures.Any(s => s.KeyName == k.Name && s.KeyId == k.KeyId)).VerifierKey;
        if (CheckManifest(manifest, checkpoint!, previous) is { } manifestFailure)
        {
            return BundleVerification.Failed(manifestFailure, manifest);
        }

        if (headOnly)
        {
            return new BundleVerification(manifest, null, key, pinned);
        }

        progress?.Report(bundle.CanSeek ? bundle.Position : 0);
        var root = checkpoint!.Root;
        var range = manifest.Complete ? new CompactRange(manifest.From, [.. manifest.Edge.Select(ParseHash)]) : null;
        List<Hash>? leafHashes = manifest.Complete ? null : new List<Hash>(BundleManifest.MaxEntriesPerFile);
        BundleFile? entriesFile = null;
        byte[]? listed = null;
        string? listedName = null;
        Task<BundleFailure?>? listedCheck = null;
        var lastIndex = (ulong?)null;
        foreach (var file in manifest.Files)
        {
            (var entry, failure) = await NextAsync(tar, file.Name, seen, cancellationToken).ConfigureAwait(false);
            if (failure is not null)
            {
                return BundleVerification.Failed(failure, manifest);
            }

            if (entry!.Length != file.Size)
            {
                return BundleVerification.Failed(new BundleFailure(file.Name, $"{entry.Length} bytes, the manifest says {file.Size}"), manifest);
            }

            var data = entry.DataStream ?? Stream.Null;
            if (file.Name.StartsWith(EntriesPrefix, StringComparison.Ordinal))
            {
                leafHashes?.Clear();
                entriesFile = file;
                failure = await EntriesFileCheck.VerifyAsync(file, data, range, listed, listedName, leafHashes, cancellationToken).ConfigureAwait(false);

                // The hashes file's own SHA-256 ran beside the entries; when it is wrong, it is the failure to name (a
                // changed listed hash otherwise shows up as a mismatch on the entry's line).
                if (listedCheck is not null && await listedCheck.ConfigureAwait(false) is { } listedFailure)
                {
                    failure = listedFailure;
                }

                listedCheck = null;
            }
            else if (file.Name.StartsWith(HashesPrefix, StringComparison.Ordinal))
            {
                (listed, failure) = await ReadHashesAsync(file, entry, cancellationToken).ConfigureAwait(false);
                listedName = file.Name;
                var hashesFile = file;
                var hashesBytes = listed;
                listedCheck = hashesBytes is null ? null : Task.Run(() => CheckHashesFile(hashesFile, hashesBytes), CancellationToken.None);
            }
            else
            {
                (failure, lastIndex) = await VerifyProofsAsync(manifest, file, entriesFile!, data, leafHashes!, root, lastIndex, cancellationToken).ConfigureAwait(false);
            }

            if (failure is not null)
            {
                return BundleVerification.Failed(failure, manifest);
            }

            progress?.Report(bundle.CanSeek ? bundle.Position : 0);
        }

        if (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } extra)
        {
            return BundleVerification.Failed(new BundleFailure(extra.Name, "is not listed in the manifest"), manifest);
        }

        if (range is not null && range.Root() != root)
        {
            return BundleVerification.Failed(new BundleFailure(EntriesPrefix, $"the entries [{manifest.From}, {manifest.To}) appended to the edge do not hash to the checkpoint's root"), manifest);
        }

        return new BundleVerification(manifest, null, key, pinned);
    }

    private (IReadOnlyList<NoteVerifier> Trusted, bool Pinned, BundleFailure? Failure) TrustedKeys(BundleManifest manifest)
    {
        if (_keys.Count > 0)
        {
            return (_keys, true, null);
        }

        // Trust on first use: the key the manifest names must verify both the manifest and the checkpoint.
        return NoteVerifier.TryParse(manifest.VerifierKey, out var named, out var error)
            ? ([named], false, null)
            : ([], false, new BundleFailure(BundleManifest.ManifestName, $"names no usable verifier key ({error}); pass the cell's key with --key"));
    }

    private static BundleFailure? CheckManifest(BundleManifest manifest, Checkpoint checkpoint, BundleManifest? previousBundle)
    {
        BundleFailure Fail(string reason) => new(BundleManifest.ManifestName, reason);
        if (manifest.Format != BundleManifest.CurrentFormat)
        {
            return Fail($"format '{manifest.Format}' is not {BundleManifest.CurrentFormat}");
        }

        if (manifest.Origin != checkpoint.Origin || manifest.TreeSize != checkpoint.Size || manifest.RootHash != checkpoint.Root.ToBase64())
        {
            return new BundleFailure(BundleManifest.CheckpointName, $"the checkpoint ({checkpoint.Origin}, size {checkpoint.Size}) is not the one the manifest names ({manifest.Origin}, size {manifest.TreeSize})");
        }

        if (string.IsNullOrEmpty(manifest.Tenant) || manifest.From > manifest.To || manifest.To > manifest.TreeSize)
        {
            return Fail($"the range [{manifest.From}, {manifest.To}) of tenant '{manifest.Tenant}' does not fit a tree of size {manifest.TreeSize}");
        }

        if (manifest.Complete && manifest.To != manifest.TreeSize)
        {
            return Fail("a complete bundle must end at its checkpoint's size");
        }

        if (manifest.Complete && (manifest.Edge.Count != BitOperations.PopCount(manifest.From) || manifest.Edge.Any(e => !Hash.TryParseBase64(e, out _))))
        {
            return Fail($"the edge must be {BitOperations.PopCount(manifest.From)} base64 hashes for from = {manifest.From}");
        }

        if (CheckFiles(manifest) is { } files)
        {
            return Fail(files);
        }

        return CheckPrevious(manifest, previousBundle) is { } previous ? Fail(previous) : null;
    }

    private static string? CheckFiles(BundleManifest manifest)
    {
        var next = manifest.From;
        var events = 0UL;
        var number = 0;
        for (var i = 0; i < manifest.Files.Count; i++)
        {
            var file = manifest.Files[i];

            // Each entries file has a companion: a complete bundle's hashes file just before it, a filtered bundle's
            // proofs file just after it.
            var companion = manifest.Complete ? i % 2 == 0 : i % 2 == 1;
            var expected = !companion ? BundleManifest.EntriesFileName(number)
                : manifest.Complete ? BundleManifest.HashesFileName(number) : BundleManifest.ProofsFileName(number);
            if (file.Name != expected)
            {
                return $"file {i} is '{file.Name}', expected '{expected}'";
            }

            if (file.Count is 0 or > BundleManifest.MaxEntriesPerFile || file.Size < 0 || file.Sha256.Length != 64 || !file.Sha256.All(char.IsAsciiHexDigitLower))
            {
                return $"{file.Name} is not described correctly (count 1..{BundleManifest.MaxEntriesPerFile}, size, lowercase hex SHA-256)";
            }

            if (companion)
            {
                var entries = manifest.Complete ? (i + 1 < manifest.Files.Count ? manifest.Files[i + 1] : null) : manifest.Files[i - 1];
                if (entries is null)
                {
                    return $"{file.Name} has no entries file after it";
                }

                if (file.FirstIndex != entries.FirstIndex || file.Count != entries.Count)
                {
                    return $"{file.Name} does not cover the entries of {entries.Name}";
                }

                if (manifest.Complete && (ulong)file.Size != file.Count * BundleManifest.LeafHashBytes)
                {
                    return $"{file.Name} is {file.Size} bytes, not {file.Count} leaf hashes of {BundleManifest.LeafHashBytes} bytes";
                }

                number += manifest.Complete ? 0 : 1;
                continue;
            }

            if (manifest.Complete ? file.FirstIndex != next : file.FirstIndex < next || file.FirstIndex >= manifest.To)
            {
                return $"{file.Name} starts at index {file.FirstIndex}, expected {(manifest.Complete ? string.Empty : "at least ")}{next}";
            }

            if (file.FirstIndex + file.Count > manifest.To || file.FirstIndex + file.Count < file.FirstIndex)
            {
                return $"{file.Name} reaches past index {manifest.To}";
            }

            // A filtered file holds count distinct increasing indexes from firstIndex, so the next one starts past them too.
            next = file.FirstIndex + file.Count;
            events += file.Count;
            number += manifest.Complete ? 1 : 0;
        }

        if (manifest.Files.Count % 2 == 1)
        {
            return $"{manifest.Files[^1].Name} has no {(manifest.Complete ? "hashes" : "proofs")} file";
        }

        if (events != manifest.Events || manifest.Complete && events != manifest.To - manifest.From)
        {
            return $"the files hold {events} entries, the manifest says {manifest.Events} for [{manifest.From}, {manifest.To})";
        }

        return null;
    }

    private static string? CheckPrevious(BundleManifest manifest, BundleManifest? previousBundle)
    {
        if (manifest.Previous is not { } previous)
        {
            return previousBundle is null ? null : "names no previous checkpoint, so it cannot continue the given previous bundle";
        }

        if (previous.TreeSize == 0 || previous.TreeSize > manifest.TreeSize || !Hash.TryParseBase64(previous.RootHash, out var previousRoot)
            || previous.ConsistencyProof.Any(h => !Hash.TryParseBase64(h, out _)))
        {
            return $"the previous checkpoint (size {previous.TreeSize}) cannot precede a tree of size {manifest.TreeSize}";
        }

        var consistent = ConsistencyProof.Verify(previous.TreeSize, manifest.TreeSize, [.. previous.ConsistencyProof.Select(ParseHash)], previousRoot, ParseHash(manifest.RootHash));
        if (!consistent.IsValid)
        {
            return $"the consistency proof from the previous checkpoint (size {previous.TreeSize}) does not verify: {consistent.Failure}";
        }

        if (manifest.Complete && previous.TreeSize == manifest.From && new CompactRange(manifest.From, [.. manifest.Edge.Select(ParseHash)]).Root() != previousRoot)
        {
            return "the edge does not fold to the previous checkpoint's root";
        }

        if (previousBundle is not null)
        {
            if (previousBundle.Origin != manifest.Origin || previousBundle.Tenant != manifest.Tenant)
            {
                return $"the previous bundle is of {previousBundle.Origin} (tenant {previousBundle.Tenant}), this one of {manifest.Origin} (tenant {manifest.Tenant})";
            }

            if (previousBundle.TreeSize != previous.TreeSize || previousBundle.RootHash != previous.RootHash)
            {
                return $"the previous checkpoint (size {previous.TreeSize}) is not the previous bundle's (size {previousBundle.TreeSize})";
            }
        }

        return null;
    }

    // A complete bundle's hashes file, read whole (CheckFiles bounded it to count × 32 bytes, at most 2 MiB) so that each
    // entry of the entries file after it can be compared with its listed leaf hash as it streams.
    private static async Task<(byte[]? Listed, BundleFailure? Failure)> ReadHashesAsync(BundleFile file, TarEntry entry, CancellationToken cancellationToken)
    {
        var bytes = await ReadSmallAsync(entry, BundleManifest.MaxEntriesPerFile * BundleManifest.LeafHashBytes, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            return (null, new BundleFailure(file.Name, $"larger than {BundleManifest.MaxEntriesPerFile} leaf hashes"));
        }

        return (bytes, null);
    }

    private static BundleFailure? CheckHashesFile(BundleFile file, byte[] bytes)
    {
        var digest = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return digest == file.Sha256 ? null : new BundleFailure(file.Name, $"SHA-256 {digest} is not the manifest's {file.Sha256}");
    }

    private static async Task<(BundleFailure? Failure, ulong? LastIndex)> VerifyProofsAsync(
        BundleManifest manifest, BundleFile file, BundleFile entriesFile, Stream data, List<Hash> leafHashes, Hash root, ulong? lastIndex, CancellationToken cancellationToken)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new NdjsonLineReader(data, BundleManifest.MaxLineBytes) { BytesRead = chunk => sha256.AppendData(chunk.Span) };
        await using (reader.ConfigureAwait(false))
        {
            var line = 0;
            while (true)
            {
                var (status, bytes) = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (status == LineStatus.End)
                {
                    break;
                }

                if (status != LineStatus.Line || line >= leafHashes.Count)
                {
                    return (new BundleFailure(file.Name, $"has more lines than {entriesFile.Name} or a damaged line", null, line + 1), lastIndex);
                }

                BundleProofLine? proofLine;
                try
                {
                    proofLine = JsonSerializer.Deserialize(bytes.Span, BundleJsonContext.Default.BundleProofLine);
                }
                catch (JsonException e)
                {
                    return (new BundleFailure(file.Name, $"not a proof line: {e.Message}", null, line + 1), lastIndex);
                }

                if (proofLine is null || proofLine.Hashes.Any(h => !Hash.TryParseBase64(h, out _)))
                {
                    return (new BundleFailure(file.Name, "not a proof line (index and base64 hashes)", null, line + 1), lastIndex);
                }

                var index = proofLine.Index;
                if (index < manifest.From || index >= manifest.To || lastIndex is { } last && index <= last || line == 0 && index != entriesFile.FirstIndex)
                {
                    return (new BundleFailure(file.Name, $"index {index} is out of order or outside [{manifest.From}, {manifest.To})", index, line + 1), lastIndex);
                }

                var included = InclusionProof.Verify(index, manifest.TreeSize, leafHashes[line], [.. proofLine.Hashes.Select(ParseHash)], root);
                if (!included.IsValid)
                {
                    return (new BundleFailure(entriesFile.Name, $"the entry is not in the tree of size {manifest.TreeSize}: its inclusion proof ({file.Name}) does not verify: {included.Failure}", index, line + 1), lastIndex);
                }

                lastIndex = index;
                line++;
            }

            if (line != leafHashes.Count)
            {
                return (new BundleFailure(file.Name, $"holds {line} proofs for the {leafHashes.Count} entries of {entriesFile.Name}"), lastIndex);
            }
        }

        var digest = Convert.ToHexStringLower(sha256.GetHashAndReset());
        return (digest == file.Sha256 ? null : new BundleFailure(file.Name, $"SHA-256 {digest} is not the manifest's {file.Sha256}"), lastIndex);
    }

    // The next member must be exactly the expected one: a regular file with a safe, known, not yet seen name.
    private static async Task<(TarEntry? Entry, BundleFailure? Failure)> NextAsync(TarReader tar, string expected, HashSet<string> seen, CancellationToken cancellationToken)
    {
        var entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        if (entry is null)
        {
            return (null, new BundleFailure(expected, "is missing (the tar ends before it)"));
        }

        var name = entry.Name;
        if (entry.EntryType is not TarEntryType.RegularFile)
        {
            return (null, new BundleFailure(name, $"is a {entry.EntryType} entry; a bundle holds only regular files"));
        }

        if (name.StartsWith('/') || name.Contains('\\', StringComparison.Ordinal) || name.Split('/').Any(part => part is ".." or "." or ""))
        {
            return (null, new BundleFailure(name, "is not a safe relative member name"));
        }

        if (!seen.Add(name))
        {
            return (null, new BundleFailure(name, "appears twice in the tar"));
        }

        if (name != expected)
        {
            var known = name is BundleManifest.ManifestName or BundleManifest.SignatureName or BundleManifest.CheckpointName
                || name.StartsWith(EntriesPrefix, StringComparison.Ordinal) || name.StartsWith(ProofsPrefix, StringComparison.Ordinal)
                || name.StartsWith(HashesPrefix, StringComparison.Ordinal);
            return (null, new BundleFailure(name, known ? $"is out of place: {expected} was expected here" : $"is not a bundle member ({expected} was expected here)"));
        }

        return (entry, null);
    }

    private static async Task<byte[]?> ReadSmallAsync(TarEntry entry, int limit, CancellationToken cancellationToken)
    {
        if (entry.Length > limit)
        {
            return null;
        }

        var bytes = new byte[entry.Length];
        if (entry.DataStream is { } data)
        {
            await data.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        }

        return bytes;
    }

    private static Hash ParseHash(string base64) => Hash.TryParseBase64(base64, out var hash) ? hash : throw new FormatException("checked before");
}
