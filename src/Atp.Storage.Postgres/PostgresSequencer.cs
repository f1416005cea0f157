using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// One of this node's writers (a tenant always has the same one). Append requests queue here; each turn of the loop takes what is queued
/// (up to a bound) and writes it in one transaction, commits it durably, and only then completes the callers' tasks
/// (group commit). Across nodes, the transaction locks the tree_heads row of every tenant it appends to, in tenant
/// order (so two nodes never deadlock), which keeps each tenant's indexes gap-free and in commit order.
/// </summary>
internal sealed partial class PostgresSequencer : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresStoreOptions _options;
    private readonly RecentLeaves _recent;
    private readonly LogQuarantine _quarantine;
    private readonly ILogger _logger;
    private readonly GroupCommit _queue;
    private readonly StorageSpace _space;
    private readonly AnchoredClock _keyClock;

    // The last tree this node committed per tenant; trusted only while the locked head still has its size and root.
    private readonly Dictionary<string, CompactRange> _trees = new(StringComparer.Ordinal);
    private readonly Task _loop;
    private NpgsqlConnection? _connection; // the writer's own; reopened after a failure

    public PostgresSequencer(NpgsqlDataSource dataSource, PostgresStoreOptions options, RecentLeaves recent, LogQuarantine quarantine, StorageSpace space, TimeProvider clock, ILogger logger)
    {
        _space = space;
        _keyClock = new AnchoredClock(clock);
        _dataSource = dataSource;
        _quarantine = quarantine;
        _options = options;
        _recent = recent;
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
    }

    private async Task RunAsync()
    {
        try
        {
            await WriteLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A bug: stop writing rather than guess, and tell every waiting caller that its append is not stored.
            LogWriterStopped(_logger, e);
            _queue.Stop(e);
            throw;
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await _queue.RunAsync(CommitBatchAsync, _options.MaxEntriesPerCommit, _options.MaxRequestsPerCommit).ConfigureAwait(false);
        }
        finally
        {
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task CommitBatchAsync(IReadOnlyList<PendingAppend> batch)
    {
        try
        {
            // A broken connection (database restart, network) fails only the batch it broke; the next batch opens a
            // new one.
            if (_connection is not { FullState: System.Data.ConnectionState.Open })
            {
                if (_connection is not null)
                {
                    await _connection.DisposeAsync().ConfigureAwait(false);
                    _connection = null;
                }

                _connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
            }

            var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            await CommitAsync(_connection, batch).ConfigureAwait(false);
            StorageMetrics.GroupCommitted("postgres", batch.Count, startedAt);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // The transaction may be open, aborted or committed: a fresh connection for the next batch (closing this one
            // rolls back whatever was not committed).
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }

            // Nothing of this batch is durable (a commit that fails, or whose outcome is unknown, is reported as not
            // stored; the client's retry with its Idempotency-Key or event ids cannot store twice). PostgreSQL's "disk
            // full" (53100) is logged once, when it starts, not with every batch it fails.
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
        }
    }

    // One transaction, begun and committed by plain statements so that the commit rides in the same round trip as the
    // last run of writes (and the head updates). Any failure that escapes leaves the transaction's state unknown: the
    // caller drops the connection, which rolls back whatever was not committed.
    private async Task CommitAsync(NpgsqlConnection connection, IReadOnlyList<PendingAppend> batch)
    {
        var tenants = batch.Select(p => p.Request.TenantId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (await TryCommitOnCachedTreesAsync(connection, batch, tenants).ConfigureAwait(false))
        {
            return;
        }

        var staged = new Dictionary<string, CompactRange>(StringComparer.Ordinal);
        var heads = await LockHeadsAsync(connection, tenants).ConfigureAwait(false);
        var sizesBefore = heads.ToDictionary(h => h.Key, h => (long)h.Value.Size, StringComparer.Ordinal);

        // Every tenant's tree is loaded, and checked against its head, before anything is written: a tenant whose tree
        // fails is quarantined here and its requests are refused below, while the others' go on in this transaction.
        foreach (var (tenantId, head) in heads)
        {
            if (!_quarantine.Contains(tenantId))
            {
                try
                {
                    await StagedTreeAsync(connection, tenantId, head, staged).ConfigureAwait(false);
                }
                catch (LogQuarantinedException)
                {
                    // Quarantined (and raised) by the check; its requests get the refusal below.
                }
            }
        }

        // Idempotency-Keys are stamped with the later reading of an anchored clock (see AnchoredClock): a wall clock that
        // jumped back cannot make a new key look old.
        var now = _keyClock.Latest().UtcTicks;
        var writer = new AppendWriter(connection);
        var run = new List<PendingAppend>();
        var committed = false;
        for (var position = 0; position < batch.Count;)
        {
            var pending = batch[position];
            var tenantId = pending.Request.TenantId;
            if (!heads.TryGetValue(tenantId, out var head))
            {
                pending.Failure = new StoreUnavailableException(
                    "The log store could not append this request; nothing of it was stored.",
                    new InvalidOperationException($"Tenant '{tenantId}' has no log."));
                position++;
                continue;
            }

            if (_quarantine.Contains(tenantId))
            {
                pending.Failure = _quarantine.Refusal(tenantId);
                position++;
                continue;
            }

            var tree = await StagedTreeAsync(connection, tenantId, head, staged).ConfigureAwait(false);
            if (AppendWriter.NeedsLookups(pending.Request))
            {
                await ApplyIsolatedAsync(writer, pending, tree, staged, now).ConfigureAwait(false);
                position++;
                continue;
            }

            // The longest run from here of requests that need no lookup, for one pipelined round trip.
            run.Clear();
            while (position + run.Count < batch.Count
                && batch[position + run.Count] is var next
                && !AppendWriter.NeedsLookups(next.Request)
                && !_quarantine.Contains(next.Request.TenantId)
                && heads.TryGetValue(next.Request.TenantId, out var nextHead))
            {
                await StagedTreeAsync(connection, next.Request.TenantId, nextHead, staged).ConfigureAwait(false);
                run.Add(next);
            }

            // A run that ends the batch carries the head updates and the COMMIT too, unless a request of it fails.
            (var settled, committed) = await ApplyRunAsync(writer, run, staged, now, commit: position + run.Count == batch.Count).ConfigureAwait(false);
            position += settled;
        }

        if (!committed)
        {
            await writer.UpdateHeadsAndCommitAsync(staged).ConfigureAwait(false);
        }

        Committed(batch, staged, sizesBefore);
    }

    // The common case in one round trip: every tenant's tree is cached here and no request needs a lookup, so the batch
    // is staged on the cached trees and sent whole — BEGIN; per tenant, in tenant order: its setting, its head locked by
    // atp.lock_head (which fails unless the head is still where the cached tree ends), one INSERT of all its requests'
    // entries, one outbox row, the head update; COMMIT. A tenant's requests keep their order; different tenants' are
    // independent. If any statement fails before the COMMIT, nothing is committed: the transaction is rolled back, the
    // outcomes are cleared, and the batch goes the long way (locks first, trees checked against the heads, a failing
    // request undone alone in its savepoint). False = not committed.
    private async Task<bool> TryCommitOnCachedTreesAsync(NpgsqlConnection connection, IReadOnlyList<PendingAppend> batch, string[] tenants)
    {
        if (batch.Any(p => AppendWriter.NeedsLookups(p.Request)) || !tenants.All(_trees.ContainsKey) || tenants.Any(_quarantine.Contains))
        {
            return false;
        }

        var staged = new Dictionary<string, CompactRange>(tenants.Length, StringComparer.Ordinal);
        var sizesBefore = new Dictionary<string, long>(tenants.Length, StringComparer.Ordinal);
        var writer = new AppendWriter(connection);
        await using var commands = new NpgsqlBatch(connection) { BatchCommands = { new NpgsqlBatchCommand("BEGIN") } };
        foreach (var tenantId in tenants)
        {
            var cached = _trees[tenantId];
            var tree = new CompactRange(cached.Size, cached.Edge());
            staged[tenantId] = tree;
            sizesBefore[tenantId] = (long)tree.Size;
            commands.BatchCommands.Add(TenantScope.SetTenant(tenantId));
            commands.BatchCommands.Add(TenantScope.Command("SELECT atp.lock_head($1, $2, $3)", tenantId, (long)tree.Size, tree.Root().ToArray()));
            writer.StageTenantInto(commands, tenantId, batch.Where(p => p.Request.TenantId == tenantId).ToList(), tree);
            AppendWriter.AddHeadUpdate(commands, tenantId, tree);
        }

        commands.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        var commitAt = commands.BatchCommands.Count - 1;
        try
        {
            await commands.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (PostgresException e) when (!e.IsTransient && e.BatchCommand is { } command && commands.BatchCommands.IndexOf(command) is var failedAt and >= 0 && failedAt < commitAt)
        {
            await using (var rollback = new NpgsqlCommand("ROLLBACK", connection))
            {
                await rollback.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            if (e.SqlState == PostgresSchema.HeadMovedState)
            {
                foreach (var tenantId in tenants)
                {
                    _trees.Remove(tenantId);
                }
            }

            foreach (var pending in batch)
            {
                pending.Outcome = null;
            }

            return false;
        }

        Committed(batch, staged, sizesBefore);
        return true;
    }

    // After the COMMIT returned: the committed trees become the cache, the new leaves go to this node's projector, and
    // only then do the callers get their receipts.
    private void Committed(IReadOnlyList<PendingAppend> batch, Dictionary<string, CompactRange> staged, Dictionary<string, long> sizesBefore)
    {
        foreach (var (tenantId, tree) in staged)
        {
            _trees[tenantId] = tree;
        }

        RememberLeaves(batch, sizesBefore);

        // Before the receipts: a caller that sees its append succeed must not see the store still reported full.
        _space.MarkAvailable("a group commit succeeded");
        foreach (var pending in batch)
        {
            pending.Settle();
        }
    }

    // The leaves this commit added, for this node's projector: in batch order, a tenant's new entries have consecutive
    // indexes from its size before the batch; re-sent events keep their old index and are not new.
    private void RememberLeaves(IReadOnlyList<PendingAppend> batch, Dictionary<string, long> sizesBefore)
    {
        foreach (var pending in batch)
        {
            if (pending is not { Failure: null, Outcome: Appended { Replayed: false } appended }
                || !sizesBefore.TryGetValue(pending.Request.TenantId, out var before))
            {
                continue;
            }

            for (var i = 0; i < appended.Receipts.Count; i++)
            {
                var index = (long)appended.Receipts[i].Index;
                if (index >= before)
                {
                    _recent.Add(pending.Request.TenantId, index, pending.Request.Entries[i].Leaf);
                }
            }
        }
    }

    // Begins the transaction and locks the heads of every tenant of the batch, in one round trip and in tenant order;
    // unknown tenants are absent.
    private static async Task<Dictionary<string, TreeHead>> LockHeadsAsync(NpgsqlConnection connection, string[] tenants)
    {
        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { new NpgsqlBatchCommand("BEGIN") } };
        foreach (var tenantId in tenants)
        {
            batch.BatchCommands.Add(TenantScope.SetTenant(tenantId));
            batch.BatchCommands.Add(TenantScope.Command("SELECT size, root FROM atp.tree_heads WHERE tenant_id = $1 FOR UPDATE", tenantId));
        }

        var heads = new Dictionary<string, TreeHead>(StringComparer.Ordinal);
        await using var reader = await batch.ExecuteReaderAsync().ConfigureAwait(false);
        foreach (var tenantId in tenants)
        {
            await reader.NextResultAsync().ConfigureAwait(false);
            if (await reader.ReadAsync().ConfigureAwait(false))
            {
                heads[tenantId] = new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]));
            }

            await reader.NextResultAsync().ConfigureAwait(false);
        }

        return heads;
    }

    // The tenant's tree as staged in this transaction so far; the committed one on first use.
    private async Task<CompactRange> StagedTreeAsync(NpgsqlConnection connection, string tenantId, TreeHead head, Dictionary<string, CompactRange> staged)
    {
        if (!staged.TryGetValue(tenantId, out var tree))
        {
            tree = await CommittedTreeAsync(connection, tenantId, head).ConfigureAwait(false);
            staged[tenantId] = tree;
        }

        return tree;
    }

    // The tenant's tree as committed: this node's cached tree if no other node has appended since, else rebuilt from
    // the O(log n) edge nodes and checked against the head (a flipped bit in an edge node would otherwise fork every
    // later checkpoint; on a mismatch the tenant's log is quarantined). A copy either way, so a failed commit leaves the
    // cache as it was.
    private async Task<CompactRange> CommittedTreeAsync(NpgsqlConnection connection, string tenantId, TreeHead head)
    {
        if (_trees.TryGetValue(tenantId, out var cached) && cached.Size == head.Size && cached.Root() == head.Root)
        {
            return new CompactRange(cached.Size, cached.Edge());
        }

        if (head.Size == 0)
        {
            return new CompactRange();
        }

        var ids = CompactRange.EdgeNodes(head.Size);
        var edge = await PostgresNodeReader.ReadAsync(connection, tenantId, ids, CancellationToken.None).ConfigureAwait(false);
        var missing = Array.FindIndex(edge, h => h is null);
        if (missing >= 0)
        {
            throw Quarantine(tenantId, $"Merkle node (level {ids[missing].Level}, index {ids[missing].Index}) of the tree edge at size {head.Size} is not stored");
        }

        var tree = new CompactRange(head.Size, edge.Select(h => h!.Value).ToArray());
        if (tree.Root() != head.Root)
        {
            throw Quarantine(tenantId, $"the root recomputed from the stored tree edge at size {head.Size} is not the stored tree head's root");
        }

        return tree;
    }

    private LogQuarantinedException Quarantine(string tenantId, string mismatch)
    {
        _quarantine.Add(new QuarantinedLog(tenantId, TreeStateCheck.Load, mismatch));
        return _quarantine.Refusal(tenantId);
    }

    // A run of requests without lookups in one pipelined batch, each in its own savepoint; with commit, the head updates
    // and the COMMIT follow in the same batch. If a request fails, the ones before it stay, it is undone and failed
    // alone, the trees go back to where they were before it, and nothing is committed; returns how many requests were
    // settled (the caller sends the rest again) and whether the transaction committed. A failing head update or
    // COMMIT fails the whole group (the caller drops the connection).
    private async Task<(int Settled, bool Committed)> ApplyRunAsync(AppendWriter writer, List<PendingAppend> run, Dictionary<string, CompactRange> staged, long now, bool commit)
    {
        var before = new CompactRange[run.Count];
        var firstCommand = new int[run.Count];
        await using var batch = new NpgsqlBatch(writer.Connection);
        for (var i = 0; i < run.Count; i++)
        {
            var tree = staged[run[i].Request.TenantId];
            before[i] = new CompactRange(tree.Size, tree.Edge());
            firstCommand[i] = batch.BatchCommands.Count;
            run[i].Outcome = writer.StageInto(batch, run[i].Request, tree, now);
        }

        var headsAt = commit ? AppendWriter.AddHeadUpdatesAndCommit(batch, staged) : int.MaxValue;
        try
        {
            if (batch.BatchCommands.Count > 0)
            {
                await batch.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            return (run.Count, commit);
        }
        catch (PostgresException e) when (!e.IsTransient && e.BatchCommand is { } command && batch.BatchCommands.IndexOf(command) is var failedAt and >= 0 && failedAt < headsAt)
        {
            var failed = Array.FindLastIndex(firstCommand, first => first <= failedAt);
            await writer.UndoRequestAsync().ConfigureAwait(false);

            // Later requests of a tenant were staged on top of earlier ones: going back from the end, each tenant ends at
            // its tree before its first request from the failed one on.
            for (var i = run.Count - 1; i >= failed; i--)
            {
                staged[run[i].Request.TenantId] = before[i];
                run[i].Outcome = null;
            }

            LogRequestFailed(_logger, run[failed].Request.TenantId, e);
            run[failed].Failure = new StoreUnavailableException("The log store could not append this request; nothing of it was stored.", e);
            return (failed + 1, false);
        }
    }

    // One request inside a savepoint: if it fails, only its own writes and its own tree changes are undone, and the
    // other requests of the group commit go on.
    private async Task ApplyIsolatedAsync(AppendWriter writer, PendingAppend pending, CompactRange tree, Dictionary<string, CompactRange> staged, long now)
    {
        var tenantId = pending.Request.TenantId;
        var before = new CompactRange(tree.Size, tree.Edge());
        try
        {
            pending.Outcome = await writer.ApplyAsync(pending.Request, tree, now).ConfigureAwait(false);
        }
        catch (PostgresException e) when (!e.IsTransient)
        {
            await writer.UndoRequestAsync().ConfigureAwait(false);
            staged[tenantId] = before;
            LogRequestFailed(_logger, tenantId, e);
            pending.Failure = new StoreUnavailableException("The log store could not append this request; nothing of it was stored.", e);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "An append request for tenant {TenantId} failed and was rolled back; the rest of its group commit went on")]
    private static partial void LogRequestFailed(ILogger logger, string tenantId, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The log writer stopped; appends are refused until restart")]
    private static partial void LogWriterStopped(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Group commit of {Requests} append requests failed; none was stored")]
    private static partial void LogCommitFailed(ILogger logger, int requests, Exception exception);
}
