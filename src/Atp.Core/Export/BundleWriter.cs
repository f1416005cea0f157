using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Core.Export;

/// <summary>
/// Writes export bundles (format <see cref="BundleManifest.CurrentFormat"/>, docs/export-bundle.md) of one tenant's
/// log. Work is split so a job survives a crash: each entries file is written into a staging directory on its own
/// (a complete file is never rewritten, a partial one is redone: see <see cref="FirstUnwrittenFile"/> and
/// <see cref="WriteEntriesFileAsync"/>), then <see cref="PackAsync"/> checks every staged file against the signed
/// checkpoint and writes the tar. <see cref="WriteAsync"/> does all of it.
/// </summary>
public sealed class BundleWriter
{
    private const int PageSize = 4096;
    private const string PartialSuffix = ".partial";
    private readonly ILogStore _store;
    private readonly TimeProvider _clock;

    public BundleWriter(ILogStore store, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(clock);
        _store = store;
        _clock = clock;
    }

    /// <summary>
    /// Plans a complete bundle of the tenant's entries from <paramref name="from"/> to the first stored checkpoint at or
    /// after <paramref name="atLeast"/> (the latest checkpoint when null); null when no stored checkpoint is that large
    /// (or none reaches past <paramref name="from"/>).
    /// </summary>
    public async Task<BundlePlan?> PlanCompleteAsync(string tenantId, ulong from, ulong? atLeast, ulong? previousSize, string? exportId, CancellationToken cancellationToken)
    {
        var checkpoint = await CoveringCheckpointAsync(tenantId, atLeast ?? from, atLeast is null, cancellationToken).ConfigureAwait(false);
        if (checkpoint is null || checkpoint.Size < from)
        {
            return null;
        }

        var plan = new BundlePlan(tenantId, from, checkpoint.Size, checkpoint.Size, previousSize, null, null, _clock.GetUtcNow(), exportId);
        plan.Validate();
        return plan;
    }

    /// <summary>
    /// Plans a filtered bundle: the given entries (sorted, distinct, in [<paramref name="from"/>, <paramref name="to"/>)),
    /// each with its inclusion proof in the first stored checkpoint at or after <paramref name="to"/>; null when there is none.
    /// </summary>
    public async Task<BundlePlan?> PlanFilteredAsync(
        string tenantId,
        ulong from,
        ulong to,
        IReadOnlyList<ulong> indexes,
        JsonElement? filters,
        ulong? previousSize,
        string? exportId,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(indexes);
        var checkpoint = await CoveringCheckpointAsync(tenantId, to, latest: false, cancellationToken).ConfigureAwait(false);
        if (checkpoint is null)
        {
            return null;
        }

        var plan = new BundlePlan(tenantId, from, to, checkpoint.Size, previousSize, [.. indexes], filters?.Clone(), _clock.GetUtcNow(), exportId);
        plan.Validate();
        return plan;
    }

    /// <summary>
    /// Whether entries file <paramref name="number"/> and its companion (the hashes file of a complete bundle, the
    /// proofs file of a filtered one) are fully staged.
    /// </summary>
    public static bool IsFileWritten(BundlePlan plan, string stagingDirectory, int number)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var companion = plan.Complete ? BundleManifest.HashesFileName(number) : BundleManifest.ProofsFileName(number);
        return File.Exists(Path.Combine(stagingDirectory, BundleManifest.EntriesFileName(number)))
            && File.Exists(Path.Combine(stagingDirectory, companion));
    }

    /// <summary>The first entries file not yet fully staged; <see cref="BundlePlan.FileCount"/> when all are.</summary>
    public static int FirstUnwrittenFile(BundlePlan plan, string stagingDirectory)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var number = 0;
        while (number < plan.FileCount && IsFileWritten(plan, stagingDirectory, number))
        {
            number++;
        }

        return number;
    }

    /// <summary>
    /// Stages entries file <paramref name="number"/> (and its hashes or proofs file): written under a temporary name, flushed to
    /// disk, then renamed, so a file under its final name is always complete. Does nothing when it is already staged.
    /// </summary>
    public async Task WriteEntriesFileAsync(BundlePlan plan, int number, string stagingDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (IsFileWritten(plan, stagingDirectory, number))
        {
            return;
        }

        var count = plan.CountOf(number);
        var entriesPath = Path.Combine(stagingDirectory, BundleManifest.EntriesFileName(number));
        var proofsPath = Path.Combine(stagingDirectory, BundleManifest.ProofsFileName(number));
        Directory.CreateDirectory(Path.GetDirectoryName(entriesPath)!);
        var entries = CreatePartial(entriesPath);
        await using (entries.ConfigureAwait(false))
        {
            if (plan.Indexes is null)
            {
                var hashesPath = Path.Combine(stagingDirectory, BundleManifest.HashesFileName(number));
                Directory.CreateDirectory(Path.GetDirectoryName(hashesPath)!);
                var hashes = CreatePartial(hashesPath);
                await using (hashes.ConfigureAwait(false))
                {
                    await WriteRangeAsync(plan, plan.From + ((ulong)number * BundleManifest.MaxEntriesPerFile), count, entries, hashes, cancellationToken).ConfigureAwait(false);
                    await hashes.FlushAsync(cancellationToken).ConfigureAwait(false);
                    hashes.Flush(flushToDisk: true);
                }

                File.Move(hashesPath + PartialSuffix, hashesPath, overwrite: true);
            }
            else
            {
                Directory.CreateDirectory(Path.GetDirectoryName(proofsPath)!);
                var proofs = CreatePartial(proofsPath);
                await using (proofs.ConfigureAwait(false))
                {
                    await WriteFilteredAsync(plan, number * BundleManifest.MaxEntriesPerFile, count, entries, proofs, cancellationToken).ConfigureAwait(false);
                    await proofs.FlushAsync(cancellationToken).ConfigureAwait(false);
                    proofs.Flush(flushToDisk: true);
                }

                File.Move(proofsPath + PartialSuffix, proofsPath, overwrite: true);
            }

            await entries.FlushAsync(cancellationToken).ConfigureAwait(false);
            entries.Flush(flushToDisk: true);
        }

        // The entries file is renamed last: its presence under the final name is what marks the step done.
        File.Move(entriesPath + PartialSuffix, entriesPath, overwrite: true);
    }

    /// <summary>
    /// Writes the bundle into <paramref name="output"/> from the staged files: checks each against the plan (entry
    /// counts and, for a complete bundle, the root recomputed from the edge and every leaf against the signed
    /// checkpoint), builds and signs the manifest with <paramref name="signer"/> (the cell's checkpoint key) and writes
    /// the tar. Throws <see cref="InvalidOperationException"/> when a file is not staged or the store's data does not
    /// match its checkpoint: a bundle that would not verify is never written.
    /// </summary>
    public async Task<BundleManifest> PackAsync(BundlePlan plan, string stagingDirectory, NoteSigner signer, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(output);
        plan.Validate();
        var stored = await _store.GetCheckpointAtOrAfterAsync(plan.Tenant, plan.TreeSize, cancellationToken).ConfigureAwait(false);
        if (stored is null || stored.Size != plan.TreeSize)
        {
            throw new InvalidOperationException($"Tenant {plan.Tenant} has no stored checkpoint of size {plan.TreeSize}.");
        }

        if (!SignedNote.TryParse(stored.Note, out var note, out var noteError) || !Checkpoint.TryParse(note.Text, out var checkpoint, out noteError))
        {
            throw new InvalidOperationException($"The stored checkpoint of size {plan.TreeSize} cannot be read: {noteError}");
        }

        var proofs = new ProofBuilder(_store.NodeReader(plan.Tenant));
        var edge = plan.Complete ? await ReadEdgeAsync(plan.Tenant, plan.From, cancellationToken).ConfigureAwait(false) : [];
        var range = plan.Complete ? new CompactRange(plan.From, edge) : null;
        var files = new List<BundleFile>(plan.FileCount * 2);
        var nextIndex = plan.From;
        for (var number = 0; number < plan.FileCount; number++)
        {
            if (!IsFileWritten(plan, stagingDirectory, number))
            {
                throw new InvalidOperationException($"Entries file {number} is not staged yet.");
            }

            byte[]? listed = null;
            if (plan.Complete)
            {
                var hashesName = BundleManifest.HashesFileName(number);
                listed = await File.ReadAllBytesAsync(Path.Combine(stagingDirectory, hashesName), cancellationToken).ConfigureAwait(false);
                if (listed.Length != plan.CountOf(number) * BundleManifest.LeafHashBytes)
                {
                    throw new InvalidOperationException($"Staged {hashesName} holds {listed.Length} bytes, not {plan.CountOf(number)} leaf hashes.");
                }

                // The hashes file goes before its entries file, so a verifier streaming the tar knows each listed hash
                // before it reaches the entry.
                files.Add(new BundleFile(hashesName, nextIndex, (ulong)plan.CountOf(number), listed.Length, Convert.ToHexStringLower(SHA256.HashData(listed))));
            }

            var (file, firstIndex) = await DigestEntriesAsync(plan, stagingDirectory, number, range, listed, nextIndex, cancellationToken).ConfigureAwait(false);
            files.Add(file);
            nextIndex = firstIndex + file.Count;
            if (!plan.Complete)
            {
                var proofsName = BundleManifest.ProofsFileName(number);
                var (size, sha256) = await DigestAsync(Path.Combine(stagingDirectory, proofsName), cancellationToken).ConfigureAwait(false);
                files.Add(new BundleFile(proofsName, file.FirstIndex, file.Count, size, sha256));
            }
        }

        if (range is not null && range.Root() != checkpoint.Root)
        {
            throw new InvalidOperationException($"The entries [{plan.From}, {plan.TreeSize}) do not hash to the root of the stored checkpoint; the store may be damaged (run atp verify store).");
        }

        BundlePrevious? previous = null;
        if (plan.PreviousSize is { } previousSize)
        {
            var previousRoot = await proofs.RootAsync(previousSize, cancellationToken).ConfigureAwait(false);
            var consistency = await proofs.ConsistencyProofAsync(previousSize, plan.TreeSize, cancellationToken).ConfigureAwait(false);
            previous = new BundlePrevious(previousSize, previousRoot.ToBase64(), [.. consistency.Select(h => h.ToBase64())]);
        }

        var manifest = new BundleManifest(
            BundleManifest.CurrentFormat,
            checkpoint.Origin,
            plan.Tenant,
            plan.From,
            plan.To,
            plan.TreeSize,
            checkpoint.Root.ToBase64(),
            plan.Complete,
            plan.Filters,
            [.. edge.Select(h => h.ToBase64())],
            previous,
            files,
            plan.Events,
            plan.CreatedAt,
            plan.ExportId)
        {
            VerifierKey = signer.Verifier.VerifierKey,
        };
        var manifestBytes = manifest.ToUtf8Bytes();
        var signature = SignedNote.Sign(Encoding.UTF8.GetString(manifestBytes), signer).ToUtf8Bytes();

        var tar = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true);
        await using (tar.ConfigureAwait(false))
        {
            await AddAsync(tar, BundleManifest.ManifestName, new MemoryStream(manifestBytes), plan.CreatedAt, cancellationToken).ConfigureAwait(false);
            await AddAsync(tar, BundleManifest.SignatureName, new MemoryStream(signature), plan.CreatedAt, cancellationToken).ConfigureAwait(false);
            await AddAsync(tar, BundleManifest.CheckpointName, new MemoryStream(Encoding.UTF8.GetBytes(stored.Note)), plan.CreatedAt, cancellationToken).ConfigureAwait(false);
            foreach (var file in files)
            {
                var stream = File.OpenRead(Path.Combine(stagingDirectory, file.Name));
                await using (stream.ConfigureAwait(false))
                {
                    if (stream.Length != file.Size)
                    {
                        throw new InvalidOperationException($"{file.Name} changed while the bundle was packed.");
                    }

                    await AddAsync(tar, file.Name, stream, plan.CreatedAt, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return manifest;
    }

    /// <summary>
    /// Stages every entries file not yet staged, then packs the bundle into <paramref name="path"/> (written under a
    /// temporary name, flushed and renamed, so a file at <paramref name="path"/> is always a whole bundle).
    /// </summary>
    public async Task<BundleManifest> WriteAsync(BundlePlan plan, string stagingDirectory, NoteSigner signer, string path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        for (var number = FirstUnwrittenFile(plan, stagingDirectory); number < plan.FileCount; number++)
        {
            await WriteEntriesFileAsync(plan, number, stagingDirectory, cancellationToken).ConfigureAwait(false);
        }

        BundleManifest manifest;
        var output = CreatePartial(path);
        await using (output.ConfigureAwait(false))
        {
            manifest = await PackAsync(plan, stagingDirectory, signer, output, cancellationToken).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }

        File.Move(path + PartialSuffix, path, overwrite: true);
        return manifest;
    }

    private async Task<StoredCheckpoint?> CoveringCheckpointAsync(string tenantId, ulong size, bool latest, CancellationToken cancellationToken) =>
        latest
            ? await _store.GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false)
            : await _store.GetCheckpointAtOrAfterAsync(tenantId, size, cancellationToken).ConfigureAwait(false);

    private async Task<Hash[]> ReadEdgeAsync(string tenantId, ulong from, CancellationToken cancellationToken)
    {
        var ids = CompactRange.EdgeNodes(from);
        var hashes = new Hash[ids.Length];
        await _store.NodeReader(tenantId).ReadNodesAsync(ids, hashes, cancellationToken).ConfigureAwait(false);
        return hashes;
    }

    private async Task WriteRangeAsync(BundlePlan plan, ulong first, int count, FileStream output, FileStream hashes, CancellationToken cancellationToken)
    {
        var next = first;
        var end = first + (ulong)count;
        while (next < end)
        {
            var page = await _store.ListEntriesAsync(plan.Tenant, next, (int)Math.Min(PageSize, end - next), cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                throw new InvalidOperationException($"Tenant {plan.Tenant}'s log has no entry {next}.");
            }

            foreach (var entry in page)
            {
                if (entry.Index != next)
                {
                    throw new InvalidOperationException($"Tenant {plan.Tenant}'s log has no entry {next}.");
                }

                await WriteLineAsync(plan.Tenant, entry, output, cancellationToken).ConfigureAwait(false);
                await hashes.WriteAsync(entry.LeafHash.ToArray(), cancellationToken).ConfigureAwait(false);
                next++;
            }
        }
    }

    private async Task WriteFilteredAsync(BundlePlan plan, int firstPosition, int count, FileStream entries, FileStream proofs, CancellationToken cancellationToken)
    {
        var builder = new ProofBuilder(_store.NodeReader(plan.Tenant));
        for (var position = firstPosition; position < firstPosition + count; position++)
        {
            var index = plan.Indexes![position];
            var entry = await _store.GetEntryAsync(plan.Tenant, index, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"Tenant {plan.Tenant}'s log has no entry {index}.");
            await WriteLineAsync(plan.Tenant, entry, entries, cancellationToken).ConfigureAwait(false);
            var proof = await builder.InclusionProofAsync(index, plan.TreeSize, cancellationToken).ConfigureAwait(false);
            var line = JsonSerializer.SerializeToUtf8Bytes(new BundleProofLine(index, [.. proof.Select(h => h.ToBase64())]), BundleJsonContext.Default.BundleProofLine);
            await proofs.WriteAsync(line, cancellationToken).ConfigureAwait(false);
            proofs.WriteByte((byte)'\n');
        }
    }

    private static async Task WriteLineAsync(string tenantId, LogEntry entry, FileStream output, CancellationToken cancellationToken)
    {
        // A bundle proves each line against its leaf hash; a purged entry has no bytes that would (docs/export-bundle.md).
        if (entry.PurgedBy is { } purgeRecord)
        {
            throw new EntryPurgedException(
                $"Entry {entry.Index} of tenant {tenantId} was purged by retention (purge record {purgeRecord}); a bundle cannot carry it. Export a range that starts after the purged entries.");
        }

        // Leaf bytes are JCS, which escapes control characters, so a raw newline means the store holds something else.
        if (entry.Leaf.AsSpan().Contains((byte)'\n') || entry.Leaf.Length > BundleManifest.MaxLineBytes)
        {
            throw new InvalidOperationException($"Entry {entry.Index} of tenant {tenantId} cannot be one line of a bundle.");
        }

        if (MerkleHasher.HashLeaf(entry.Leaf) != entry.LeafHash)
        {
            throw new InvalidOperationException($"Entry {entry.Index} of tenant {tenantId} does not match its stored leaf hash; the store may be damaged (run atp verify store).");
        }

        await output.WriteAsync(entry.Leaf, cancellationToken).ConfigureAwait(false);
        output.WriteByte((byte)'\n');
    }

    // One pass over a staged entries file: its size and SHA-256, its line count and (complete bundles) every leaf
    // checked against its staged hashes file and appended to the tree being rebuilt.
    private static async Task<(BundleFile File, ulong FirstIndex)> DigestEntriesAsync(
        BundlePlan plan, string stagingDirectory, int number, CompactRange? range, byte[]? listed, ulong nextIndex, CancellationToken cancellationToken)
    {
        var name = BundleManifest.EntriesFileName(number);
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var stream = File.OpenRead(Path.Combine(stagingDirectory, name));
        await using (stream.ConfigureAwait(false))
        {
            var reader = new NdjsonLineReader(stream, BundleManifest.MaxLineBytes) { BytesRead = chunk => sha256.AppendData(chunk.Span) };
            await using var readerScope = reader.ConfigureAwait(false);
            var expected = plan.CountOf(number);
            var lines = 0;
            while (true)
            {
                var (status, line) = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (status == LineStatus.End)
                {
                    break;
                }

                if (status != LineStatus.Line)
                {
                    throw new InvalidOperationException($"Staged {name} is damaged ({status}).");
                }

                if (lines >= expected)
                {
                    throw new InvalidOperationException($"Staged {name} holds more than {expected} entries.");
                }

                var leafHash = MerkleHasher.HashLeaf(line.Span);
                if (listed is not null && !leafHash.AsSpan().SequenceEqual(listed.AsSpan(lines * BundleManifest.LeafHashBytes, BundleManifest.LeafHashBytes)))
                {
                    throw new InvalidOperationException($"Staged {name} line {lines + 1} does not match its staged hashes file.");
                }

                range?.Append(leafHash);
                lines++;
            }

            if (lines != expected)
            {
                throw new InvalidOperationException($"Staged {name} holds {lines} entries, not {expected}.");
            }

            var firstIndex = plan.Indexes is { } indexes ? indexes[number * BundleManifest.MaxEntriesPerFile] : nextIndex;
            var file = new BundleFile(name, firstIndex, (ulong)lines, reader.Position, Convert.ToHexStringLower(sha256.GetHashAndReset()));
            return (file, firstIndex);
        }
    }

    private static async Task<(long Size, string Sha256)> DigestAsync(string path, CancellationToken cancellationToken)
    {
        var stream = File.OpenRead(path);
        await using (stream.ConfigureAwait(false))
        {
            var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
            return (stream.Length, Convert.ToHexStringLower(hash));
        }
    }

    private static FileStream CreatePartial(string path) =>
        new(path + PartialSuffix, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.Asynchronous });

    private static async Task AddAsync(TarWriter tar, string name, Stream data, DateTimeOffset modified, CancellationToken cancellationToken)
    {
        // Fixed metadata (mode, owner, time of the plan) so the same plan packs into the same bytes after a restart.
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = data,
            ModificationTime = modified,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            Uid = 0,
            Gid = 0,
        };
        await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>A bundle would have to carry an entry whose content retention removed; nothing of the bundle is kept.</summary>
public sealed class EntryPurgedException(string message) : InvalidOperationException(message);
