using System.Text.Json;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The single writer of the logs. Append requests from all callers queue here; each turn of the loop takes everything
/// queued (up to a bound) and writes it in one transaction — entries, leaf hashes, new Merkle nodes, tree heads,
/// outbox rows, idempotency records — commits it durably, and only then completes the callers' tasks (group commit).
/// One writer means per-tenant indexes follow commit order with no gaps and no locking beyond SQLite's own.
/// </summary>
internal sealed partial class SqliteSequencer : IAsyncDisposable
{
    private readonly SqliteStoreOptions _options;
    private readonly ILogger _logger;
    private readonly GroupCommit _queue;
    private readonly Dictionary<string, CompactRange> _trees = new(StringComparer.Ordinal);
    private readonly TenantNumbers _tenantNumbers;
    private readonly LogQuarantine _quarantine;
    private readonly WriteConnection _writeConnection;
    private readonly OutboxProgress _outbox;
    private readonly StorageSpace _space;
    private readonly AnchoredClock _keyClock;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stopping = new();

    public SqliteSequencer(WriteConnection writeConnection, OutboxProgress outbox, TenantNumbers tenantNumbers, LogQuarantine quarantine, SqliteStoreOptions options, StorageSpace space, TimeProvider clock, ILogger logger)
    {
        _space = space;
        _keyClock = new AnchoredClock(clock);
        _tenantNumbers = tenantNumbers;
        _quarantine = quarantine;
        _writeConnection = writeConnection;
        _outbox = outbox;
        _options = options;
        _logger = logger;
        _queue = new GroupCommit(options.QueueCapacity);
        _loop = Task.Run(RunAsync);
    }

    public bool IsRunning => !_loop.IsCompleted;

    public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken) =>
        _queue.AppendAsync(request, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _queue.Complete();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Already logged by the writer when it stopped.
        }

        _stopping.Dispose();
    }

    private async Task RunAsync()
    {
        try
        {
            await WriteLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A bug or a broken environment: stop writing rather than guess, and tell every waiting caller that its
            // append is not stored. Readiness reports the stopped writer.
            LogWriterStopped(_logger, e);
            _queue.Stop(e);
            throw;
        }
    }

    private async Task WriteLoopAsync()
    {
        BatchWriter? writer = null;
        try
        {
            await _queue.RunAsync(
                async batch =>
                {
                    using var turn = await _writeConnection.TakeAsync(CancellationToken.None).ConfigureAwait(false);
                    writer ??= new BatchWriter(turn.Connection, _tenantNumbers);
                    Commit(turn.Connection, writer, batch);
                },
                _options.MaxEntriesPerCommit,
                int.MaxValue).ConfigureAwait(false);
        }
        finally
        {
            writer?.Dispose();
        }
    }

    private void Commit(SqliteConnection connection, BatchWriter writer, IReadOnlyList<PendingAppend> batch)
    {
        // While the disk is full no write is tried: each would fail the same way, and a refusal costs nothing. The
        // store's space watcher ends the state when there is room again.
        if (_space.IsFull)
        {
            _space.CountRefused();
            foreach (var pending in batch)
            {
                pending.Fail(new StorageFullException("The log store's disk is full; nothing was stored."));
            }

            return;
        }

        var staged = new Dictionary<string, CompactRange>(StringComparer.Ordinal);
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var transaction = connection.BeginTransaction();
            writer.Bind(transaction);
            if (_outbox.TakeDeletable() is { } handled)
            {
                writer.DeleteOutboxThrough(handled);
            }

            // Idempotency-Keys are stamped with the later reading of an anchored clock (see AnchoredClock): a wall clock that
        // jumped back cannot make a new key look old.
        var now = _keyClock.Latest().UtcTicks;
            foreach (var pending in batch)
            {
                ApplyIsolated(writer, pending, staged, now);
            }

            foreach (var (tenantId, tree) in staged)
            {
                writer.UpdateTreeHead(tenantId, tree.Size, tree.Root());
            }

            transaction.Commit();
            StorageMetrics.GroupCommitted("sqlite", batch.Count, startedAt);
        }
        catch (Exception e) when (e is SqliteException or InvalidOperationException or IOException)
        {
            // Nothing of this batch is durable: forget the staged trees (the cache still holds the committed ones) and
            // fail every caller of the batch. No receipt is sent for an append that did not commit. A full disk is
            // logged once, when it becomes full, not with every commit that fails because of it.
            var full = _space.TryMarkFull(e, "group commit");
            if (!full)
            {
                LogCommitFailed(_logger, batch.Count, e);
            }

            foreach (var pending in batch)
            {
                pending.Fail(full
                    ? new StorageFullException("The log store's disk is full; nothing was stored.", e)
                    : new StoreUnavailableException("The log store could not commit the append.", e));
            }

            return;
        }

        foreach (var (tenantId, tree) in staged)
        {
            _trees[tenantId] = tree;
        }

        foreach (var pending in batch)
        {
            pending.Settle();
        }
    }

    // One request inside a savepoint: if it fails, only its own writes and its own tree changes are undone, and the
    // other requests of the group commit go on.
    private void ApplyIsolated(BatchWriter writer, PendingAppend pending, Dictionary<string, CompactRange> staged, long now)
    {
        var tenantId = pending.Request.TenantId;
        var before = staged.TryGetValue(tenantId, out var tree) ? new CompactRange(tree.Size, tree.Edge()) : null;
        writer.BeginRequest();
        try
        {
            pending.Outcome = Apply(writer, pending.Request, staged, now);
            writer.EndRequest();
        }
        catch (Exception e) when ((e is SqliteException or InvalidOperationException or JsonException or LogQuarantinedException) && !_space.IsDiskFull(e))
        {
            // (SQLite may roll the whole transaction back on SQLITE_FULL, so a full disk fails the group commit instead.)
            writer.UndoRequest();
            if (before is null)
            {
                staged.Remove(tenantId);
            }
            else
            {
                staged[tenantId] = before;
            }

            if (e is LogQuarantinedException quarantined)
            {
                pending.Failure = quarantined;
                return;
            }

            LogRequestFailed(_logger, tenantId, e);
            pending.Failure = new StoreUnavailableException("The log store could not append this request; nothing of it was stored.", e);
        }
    }

    private AppendOutcome Apply(BatchWriter writer, AppendRequest request, Dictionary<string, CompactRange> staged, long now)
    {
        // Quarantined while this request waited in the queue: refused like the ones the store turns away at the door.
        if (_quarantine.Contains(request.TenantId))
        {
            throw _quarantine.Refusal(request.TenantId);
        }

        if (request.Idempotency is { } claim)
        {
            var previous = writer.FindIdempotencyKey(request.TenantId, claim.Key);
            if (previous is { } found)
            {
                return found.RequestHash == claim.RequestHash
                    ? new Appended(DeserializeReceipts(found.Receipts), Replayed: true)
                    : new IdempotencyKeyReused(claim.Key);
            }
        }

        var tenantNumber = writer.TenantNumber(request.TenantId) ?? throw new InvalidOperationException($"Tenant '{request.TenantId}' has no log.");
        var receipts = new Receipt?[request.Entries.Count];
        if (ResentEvents.Match(request.Entries, id => writer.FindEvent(tenantNumber, id), receipts) is { } conflict)
        {
            return conflict;
        }

        if (request.ReplayOnly is { } overQuota && Array.Exists(receipts, r => r is null))
        {
            return overQuota;
        }

        // The keys first, in the request's savepoint: no entry sealed under a key commits without it.
        foreach (var dataKey in request.DataKeys)
        {
            writer.InsertDataKey(request.TenantId, dataKey, now);
        }

        foreach (var keyId in request.DestroyedDataKeys)
        {
            writer.DeleteDataKey(request.TenantId, keyId);
        }

        var tree = StagedTree(writer, request.TenantId, tenantNumber, staged);
        var firstIndex = tree.Size;
        var appended = false;
        long bytes = 0;
        for (var i = 0; i < request.Entries.Count; i++)
        {
            if (receipts[i] is not null)
            {
                continue;
            }

            var entry = request.Entries[i];
            var index = tree.Size;
            writer.AppendEntry(tenantNumber, index, entry, tree);
            receipts[i] = new Receipt(entry.EventId, index, entry.LeafHash);
            bytes += entry.Leaf.Length;
            appended = true;
        }

        if (appended)
        {
            writer.AddOutboxRange(request.TenantId, firstIndex, tree.Size - 1);

            // In the request's savepoint, so an undone request leaves the counter as it was (storage quotas read it).
            writer.AddStoredBytes(request.TenantId, bytes);
        }

        if (request.Purge is { } purge && appended)
        {
            Purge(writer, request, purge, tenantNumber, receipts);
        }

        var result = receipts.Select(r => r!).ToArray();
        if (request.Idempotency is { } newClaim)
        {
            writer.InsertIdempotencyKey(request.TenantId, newClaim, JsonSerializer.Serialize(result.Select(ReceiptRecord.From).ToArray(), ReceiptJson.Default.ReceiptRecordArray), now);
        }

        return new Appended(result, Replayed: !appended);
    }

    // In the request's savepoint, after its one entry (the purge record) is appended: an entry purged already (a
    // concurrent pass) fails the request, so no record ever claims an entry another record purged.
    private static void Purge(BatchWriter writer, AppendRequest request, EntryPurge purge, long tenantNumber, Receipt?[] receipts)
    {
        if (receipts is not [{ } record] || request.Entries.Count != 1)
        {
            throw new InvalidOperationException("A purge is appended with exactly one new entry, its purge record.");
        }

        foreach (var index in purge.Indexes)
        {
            if (index >= record.Index || !writer.PurgeEntry(tenantNumber, index, record.Index))
            {
                throw new InvalidOperationException($"Entry {index} is purged already or is not before the purge record; nothing of this purge was stored.");
            }
        }

        writer.AddStoredBytes(request.TenantId, -purge.Bytes);
    }

    private CompactRange StagedTree(BatchWriter writer, string tenantId, long tenantNumber, Dictionary<string, CompactRange> staged)
    {
        if (staged.TryGetValue(tenantId, out var tree))
        {
            return tree;
        }

        if (!_trees.TryGetValue(tenantId, out var committed))
        {
            committed = LoadCheckedTree(writer, tenantId, tenantNumber);
            _trees[tenantId] = committed;
        }

        // A copy, so a failed commit leaves the committed tree untouched.
        tree = new CompactRange(committed.Size, committed.Edge());
        staged[tenantId] = tree;
        return tree;
    }

    // The committed tree, loaded once per start: its edge comes from stored nodes, so it must add up to the stored head
    // before anything is appended on it — a flipped bit in an edge node would otherwise fork every later checkpoint.
    private CompactRange LoadCheckedTree(BatchWriter writer, string tenantId, long tenantNumber)
    {
        var (tree, head, missing) = writer.LoadTree(tenantId, tenantNumber) ?? throw new InvalidOperationException($"Tenant '{tenantId}' has no log.");
        var mismatch = missing is { } node
            ? $"Merkle node (level {node.Level}, index {node.Index}) of the tree edge at size {head.Size} is not stored"
            : tree!.Root() != head.Root
                ? $"the root recomputed from the stored tree edge at size {head.Size} is not the stored tree head's root"
                : null;
        if (mismatch is null)
        {
            return tree!;
        }

        _quarantine.Add(new QuarantinedLog(tenantId, TreeStateCheck.Load, mismatch));
        throw _quarantine.Refusal(tenantId);
    }

    private static Receipt[] DeserializeReceipts(string json) =>
        JsonSerializer.Deserialize(json, ReceiptJson.Default.ReceiptRecordArray)!.Select(r => r.ToReceipt()).ToArray();

    [LoggerMessage(Level = LogLevel.Error, Message = "An append request for tenant {TenantId} failed and was rolled back; the rest of its group commit went on")]
    private static partial void LogRequestFailed(ILogger logger, string tenantId, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The log writer stopped; appends are refused until restart")]
    private static partial void LogWriterStopped(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Group commit of {Requests} append requests failed; none was stored")]
    private static partial void LogCommitFailed(ILogger logger, int requests, Exception exception);
}



