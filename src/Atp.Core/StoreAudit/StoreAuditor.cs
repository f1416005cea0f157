using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Core.StoreAudit;

/// <summary>How far a store audit has come: entries checked of the total, and leaf bytes hashed.</summary>
public readonly record struct AuditProgress(string TenantId, ulong EntriesChecked, ulong EntriesTotal, long LeafBytes);

/// <summary>What a store audit covered and found.</summary>
public sealed record StoreAuditResult(int Tenants, ulong Entries, long LeafBytes, int Checkpoints, long Findings)
{
    public bool IsClean => Findings == 0;
}

/// <summary>
/// The whole-store self-audit behind <c>atp verify store</c>: for every tenant, every leaf against its stored hash and
/// every stored node against its children (<see cref="TreeAudit"/>), the tree head's root against the recomputed tree,
/// and every stored checkpoint — its signature against the trusted keys, its origin, and its root against the tree at
/// its size. Two checkpoints whose roots are both the recomputed tree's roots at their sizes are consistent (one tree
/// contains the other as a prefix); a checkpoint whose root is not is inconsistent with the log and with every
/// checkpoint that is. Read-only; reports each mismatch as it is found.
/// </summary>
public sealed class StoreAuditor(ILogAuditSource source, IReadOnlyList<NoteVerifier> trusted)
{
    /// <summary>Rows per scan call: bounds how long a progress update can lag, and the memory a scanning thread holds.</summary>
    public const ulong ChunkEntries = 4_096;

    /// <summary>
    /// One thread per core, at most 4: beyond that the in-order tree check (about a tenth of the work) and the
    /// store's own reads are what limit the audit.
    /// </summary>
    public static int DefaultScanners { get; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>Threads that read and hash ranges at once (<see cref="DefaultScanners"/> unless set).</summary>
    public int Scanners
    {
        get;
        init => field = value is >= 1 and <= 64 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "1 to 64 threads.");
    } = DefaultScanners;

    public async Task<StoreAuditResult> RunAsync(Action<AuditFinding> report, IProgress<AuditProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var tenants = await source.ListTenantsAsync(cancellationToken).ConfigureAwait(false);
        var heads = new List<(string Tenant, TreeHead? Head)>(tenants.Count);
        ulong total = 0;
        foreach (var tenant in tenants)
        {
            var head = await source.GetTreeHeadAsync(tenant, cancellationToken).ConfigureAwait(false);
            heads.Add((tenant, head));
            total += head?.Size ?? 0;
        }

        long findings = 0;
        void Count(AuditFinding finding)
        {
            findings++;
            report(finding);
        }

        ulong done = 0;
        long bytes = 0;
        var checkpointCount = 0;
        foreach (var (tenant, head) in heads)
        {
            var checkpoints = await source.ListCheckpointsAsync(tenant, cancellationToken).ConfigureAwait(false);
            checkpointCount += checkpoints.Count;
            var opened = OpenCheckpoints(tenant, checkpoints, head, Count);
            var size = head?.Size ?? 0;
            var audit = new TreeAudit(tenant, opened.Select(c => c.Size).Append(size), Count);
            await ScanAsync(tenant, size, audit, p => progress?.Report(p with { EntriesChecked = done + p.EntriesChecked, EntriesTotal = total, LeafBytes = bytes + p.LeafBytes }), cancellationToken)
                .ConfigureAwait(false);

            if (audit.Size < size)
            {
                Count(new AuditFinding(tenant, AuditFindingKind.MissingEntry, audit.Size,
                    audit.Size + 1 == size ? "the entry is not stored" : $"entries {audit.Size} to {size - 1} are not stored"));
            }

            if (head is not null && audit.TryGetRoot(size, out var root) && root != head.Root)
            {
                Count(new AuditFinding(tenant, AuditFindingKind.TreeHead, size,
                    $"the stored tree head's root {head.Root.ToBase64()} is not the root of the stored tree at size {size} ({root.ToBase64()})"));
            }

            CheckRoots(tenant, opened, audit, Count);
            done += size;
            bytes += audit.LeafBytes;
            progress?.Report(new AuditProgress(tenant, done, total, bytes));
        }

        return new StoreAuditResult(tenants.Count, done, bytes, checkpointCount, findings);
    }

    /// <summary>
    /// Reads the tenant's rows [0, <paramref name="size"/>) in ranges of <see cref="ChunkEntries"/> on up to
    /// <see cref="Scanners"/> threads at once, range k on thread k mod n: each thread reads its range from the store
    /// and checks its leaves there (the leaf hash is most of the work, and independent of every other row), then waits
    /// for its turn and folds the range into the tree check, which must see the rows in index order. So reading and
    /// hashing run on every core while the tree check, about one 65-byte node hash a row, follows in order; findings
    /// and progress are reported by the thread holding the turn, one at a time and in index order.
    /// </summary>
    private async Task ScanAsync(string tenant, ulong size, TreeAudit audit, Action<AuditProgress> progress, CancellationToken cancellationToken)
    {
        var ranges = (size + ChunkEntries - 1) / ChunkEntries;
        var scanners = (int)Math.Min((ulong)Scanners, Math.Max(ranges, 1));
        var turns = Enumerable.Range(0, scanners).Select(s => new SemaphoreSlim(s == 0 ? 1 : 0, 1)).ToArray();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            async Task ScanRangesAsync(int scanner)
            {
                var chunk = new ScannedChunk(tenant);
                for (var range = (ulong)scanner; range < ranges; range += (ulong)scanners)
                {
                    chunk.Clear();
                    var from = range * ChunkEntries;
                    await source.ScanAsync(tenant, from, Math.Min(size, from + ChunkEntries), chunk.Visit, failed.Token).ConfigureAwait(false);
                    await turns[scanner].WaitAsync(failed.Token).ConfigureAwait(false);
                    chunk.Fold(audit);
                    progress(new AuditProgress(tenant, audit.Size, size, audit.LeafBytes));
                    turns[(scanner + 1) % scanners].Release();
                }
            }

            var tasks = Enumerable.Range(0, scanners).Select(scanner => Task.Run(async () =>
            {
                try
                {
                    await ScanRangesAsync(scanner).ConfigureAwait(false);
                }
                catch
                {
                    // The other threads would wait for this one's turn forever.
                    await failed.CancelAsync().ConfigureAwait(false);
                    throw;
                }
            }, CancellationToken.None)).ToArray();
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Cancelled by a failed thread: surface that thread's own error (the store's), not the cancellation.
                var cause = tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException);
                if (cause is not null)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
                }

                throw;
            }
        }
        finally
        {
            foreach (var turn in turns)
            {
                turn.Dispose();
            }
        }
    }

    // Signature, shape, size and origin of each stored checkpoint; the ones whose text can be read are returned for the root check.
    private List<Checkpoint> OpenCheckpoints(string tenant, IReadOnlyList<StoredCheckpoint> stored, TreeHead? head, Action<AuditFinding> report)
    {
        var opened = new List<Checkpoint>(stored.Count);
        string? origin = null;
        foreach (var checkpoint in stored)
        {
            if (!SignedNote.TryParse(checkpoint.Note, out var note, out var error))
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointSignature, checkpoint.Size, $"the stored checkpoint is not a signed note: {error}"));
                continue;
            }

            var verified = note.Verify(trusted, out _);
            if (!verified.IsValid)
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointSignature, checkpoint.Size, $"the checkpoint's signature does not verify: {verified.Failure}"));
            }

            if (!Checkpoint.TryParse(note.Text, out var parsed, out error))
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointSignature, checkpoint.Size, $"the note is not a checkpoint: {error}"));
                continue;
            }

            if (parsed.Size != checkpoint.Size)
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointInconsistent, checkpoint.Size, $"the note is for tree size {parsed.Size}, but is stored as the checkpoint of size {checkpoint.Size}"));
                continue;
            }

            // Origins are <cell origin>/<tenant>: a checkpoint of another log here would vouch for the wrong tree.
            if (!parsed.Origin.EndsWith("/" + tenant, StringComparison.Ordinal) || (origin is not null && parsed.Origin != origin))
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointInconsistent, checkpoint.Size,
                    $"the checkpoint's origin '{parsed.Origin}' is not this tenant's log{(origin is null ? "" : $" ('{origin}')")}"));
                continue;
            }

            origin = parsed.Origin;
            if (parsed.Size > (head?.Size ?? 0))
            {
                report(new AuditFinding(tenant, AuditFindingKind.CheckpointInconsistent, checkpoint.Size, $"the checkpoint is beyond the stored tree head (size {head?.Size ?? 0})"));
                continue;
            }

            opened.Add(parsed);
        }

        return opened;
    }

    private static void CheckRoots(string tenant, List<Checkpoint> checkpoints, TreeAudit audit, Action<AuditFinding> report)
    {
        Checkpoint? lastGood = null;
        foreach (var checkpoint in checkpoints)
        {
            if (!audit.TryGetRoot(checkpoint.Size, out var root))
            {
                // The tree could not be recomputed up to here (a missing entry, already reported).
                continue;
            }

            if (root == checkpoint.Root)
            {
                lastGood = checkpoint;
                continue;
            }

            var neighbour = lastGood is null ? "" : $"; it is not consistent with the checkpoint of size {lastGood.Size}";
            report(new AuditFinding(tenant, AuditFindingKind.CheckpointInconsistent, checkpoint.Size,
                $"the checkpoint's root {checkpoint.Root.ToBase64()} is not the stored tree's root at size {checkpoint.Size} ({root.ToBase64()}){neighbour}"));
        }
    }
}
