using System.Text;
using System.Text.Json;
using Atp.Core.Query;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine's read models, in their own file (<see cref="ReadModelSchema"/>): the projector drains the log
/// file's outbox into event_index, event_targets and the FTS5 table event_text; searches read those and then the log
/// rows they point at. The projector reads and parses on a snapshot of the log, writes the rows on the read-model
/// file (its own write lock: appends never wait for it), then acknowledges the outbox rows it handled, which the
/// sequencer deletes in its next group commit (<see cref="OutboxProgress"/>).
/// An entry that cannot be projected becomes a dead letter and the rest go on. Damage to the file (SQLite reports it
/// corrupt, or a row disagrees with the log entry it names) moves the file aside and rebuilds it in the background;
/// searches answer <see cref="ProjectionRebuildingException"/> until every tenant has caught up again.
/// </summary>
internal sealed partial class SqliteReadModels(
    SqliteConnections log, WriteConnection logWriter, SqliteConnections readModels, WriteConnection readModelWriter, TenantNumbers tenantNumbers, OutboxProgress outbox, TimeProvider clock, ILogger logger)
{
    private const ulong ReconcileSlice = 10_000;

    // Everything the read models hold of one tenant.
    private const string ClearTenantSql = """
        DELETE FROM event_text WHERE rowid BETWEEN $first AND $last;
        DELETE FROM event_targets WHERE tenant_num = $num;
        DELETE FROM event_index WHERE tenant_num = $num;
        DELETE FROM projections WHERE tenant_id = $tenant;
        DELETE FROM projection_ranges WHERE tenant_id = $tenant;
        DELETE FROM dead_letters WHERE tenant_id = $tenant;
        """;

    private readonly Lock _state = new();
    private string? _damage;

    // After a rebuild: the size each tenant's read models must reach before searches are answered again.
    private Dictionary<string, ulong>? _rebuildTargets;

    /// <summary>True from the moment damage is found until the rebuilt read models caught up with the log.</summary>
    public bool IsRebuilding
    {
        get
        {
            lock (_state)
            {
                return _damage is not null || _rebuildTargets is not null;
            }
        }
    }

    /// <summary>Records damage found by a reader; the projector moves the file aside and rebuilds at its next turn.</summary>
    public void ReportDamage(string reason)
    {
        lock (_state)
        {
            if (_damage is not null)
            {
                return;
            }

            _damage = reason;
        }

        ReadModelDamage.LogDamageDetected(logger, readModels.DatabasePath, reason);
    }

    /// <summary>Marks the read models as rebuilding until each tenant's projection reaches the given sizes (at start, after a damaged file was moved aside).</summary>
    public void RebuildingUntil(Dictionary<string, ulong> targets)
    {
        var open = targets.Where(t => t.Value > 0).ToDictionary(StringComparer.Ordinal);
        lock (_state)
        {
            _rebuildTargets = open.Count > 0 ? open : null;
        }
    }

    public async Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken)
    {
        string? damage;
        lock (_state)
        {
            damage = _damage;
        }

        if (damage is not null)
        {
            await ReplaceDamagedFileAsync(damage, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            return await ProjectTurnAsync(maxEntries, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            return 0;
        }
    }

    private async Task<int> ProjectTurnAsync(int maxEntries, CancellationToken cancellationToken)
    {
        PendingProjection pending;
        using (var reading = await log.OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            pending = await ReadPendingAsync(reading, maxEntries, outbox.Acknowledged, cancellationToken).ConfigureAwait(false);
        }

        if (pending.LastOutboxId is not { } lastOutboxId)
        {
            return 0;
        }

        var projected = 0;
        var sizes = new Dictionary<string, ulong>(StringComparer.Ordinal);
        using (var turn = await readModelWriter.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            using var transaction = turn.Connection.BeginTransaction();
            using (var writer = new Projector(turn.Connection, clock.GetUtcNow().UtcTicks))
            {
                foreach (var entry in pending.Entries)
                {
                    projected += writer.Project(entry);
                }

                foreach (var (num, rowId) in pending.PurgedRows)
                {
                    writer.Remove(num, rowId);
                }

                foreach (var (tenantId, ranges) in pending.HandledRanges)
                {
                    sizes[tenantId] = HandledRanges.Advance(turn.Connection, transaction, tenantId, ranges);
                }
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var dead in pending.Entries.Where(e => e.Error is not null))
        {
            ReadModelDamage.LogDeadLetter(logger, dead.TenantId, LogRowId.IndexOf(dead.RowId), dead.Error!);
        }

        // Only after the rows are in: a crash before the sequencer deletes them redelivers these outbox rows, and the
        // inbox makes that a no-op. Outbox ids grow in commit order, so every id up to the last one read was read.
        outbox.Acknowledge(lastOutboxId);
        CaughtUp(sizes);
        return projected;
    }

    // Ends the rebuilding state once every tenant reached the size it had when the damage was found.
    private void CaughtUp(Dictionary<string, ulong> sizes)
    {
        var done = false;
        lock (_state)
        {
            if (_rebuildTargets is null)
            {
                return;
            }

            foreach (var (tenantId, size) in sizes)
            {
                if (_rebuildTargets.TryGetValue(tenantId, out var target) && size >= target)
                {
                    _rebuildTargets.Remove(tenantId);
                }
            }

            if (_rebuildTargets.Count == 0)
            {
                _rebuildTargets = null;
                done = true;
            }
        }

        if (done)
        {
            ReadModelDamage.LogRebuilt(logger, readModels.DatabasePath);
        }
    }

    // On the projector's thread: moves the damaged file aside under the read-model writer's turn (no one writes it
    // meanwhile), starts a new one and re-queues every log from the start. Searches already running on the old file
    // keep their open handle; new ones are refused until the rebuild caught up.
    private async Task ReplaceDamagedFileAsync(string reason, CancellationToken cancellationToken)
    {
        using (var turn = await readModelWriter.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            var aside = ReadModelDamage.MoveAside(readModels.DatabasePath, clock.GetUtcNow());
            readModelWriter.Reopen();
            ReadModelSchema.Migrate(turn.Connection);
            ReadModelDamage.LogMovedAside(logger, readModels.DatabasePath, reason, aside);
        }

        Dictionary<string, ulong> heads;
        using (var logTurn = await logWriter.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            heads = Reconcile(logTurn.Connection, outbox.Acknowledged);
        }

        lock (_state)
        {
            _damage = null;
            var open = heads.Where(t => t.Value > 0).ToDictionary(StringComparer.Ordinal);
            _rebuildTargets = open.Count > 0 ? open : null;
        }
    }

    public async Task<ulong> RebuildAsync(string tenantId, CancellationToken cancellationToken)
    {
        ThrowIfRebuilding();
        try
        {
            return await RebuildTenantAsync(tenantId, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            throw new ProjectionRebuildingException();
        }
    }

    private async Task<ulong> RebuildTenantAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var reading = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(reading, null, tenantId) is not { } num)
        {
            throw new InvalidOperationException($"No tenant '{tenantId}'.");
        }

        // The projector waits meanwhile; outbox rows of the rebuilt entries are deleted after the commit (should that
        // not happen, they project nothing new).
        using var turn = await readModelWriter.TakeAsync(cancellationToken).ConfigureAwait(false);
        var connection = turn.Connection;

        // One snapshot of the log: its size and exactly its rows.
        using var snapshot = reading.BeginTransaction(deferred: true);
        ulong size;
        using (var head = reading.CreateCommand())
        {
            head.Transaction = snapshot;
            head.CommandText = "SELECT size FROM tree_heads WHERE tenant_id = $t";
            head.Parameters.AddWithValue("$t", tenantId);
            size = (ulong)(long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L);
        }

        using var transaction = connection.BeginTransaction();
        using (var clear = connection.CreateCommand())
        {
            clear.Transaction = transaction;
            clear.CommandText = ClearTenantSql;
            BindTenant(clear, tenantId, num);
            await clear.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        using (var writer = new Projector(connection, clock.GetUtcNow().UtcTicks))
        {
            if (size > 0)
            {
                using var read = ReadEntriesCommand(reading, snapshot, num, 0, (long)size - 1);
                using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    writer.Project(ReadEntry(reader, tenantId, num));
                }
            }
        }

        HandledRanges.SetProjectedSize(connection, transaction, tenantId, size);

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        using (var logTurn = await logWriter.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            using var done = logTurn.Connection.CreateCommand();
            done.CommandText = "DELETE FROM outbox WHERE tenant_id = $t AND last_idx < $size";
            done.Parameters.AddWithValue("$t", tenantId);
            done.Parameters.AddWithValue("$size", (long)size);
            await done.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return size;
    }

    public async Task<ProjectionStatus?> StatusAsync(string tenantId, CancellationToken cancellationToken)
    {
        ulong treeSize;
        using (var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false))
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT size FROM tree_heads WHERE tenant_id = $t";
            command.Parameters.AddWithValue("$t", tenantId);
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not long size)
            {
                return null;
            }

            treeSize = (ulong)size;
        }

        if (IsRebuilding)
        {
            // The file may be the damaged one still: report what is known without reading it.
            return new ProjectionStatus(await TryProjectedSizeAsync(tenantId, cancellationToken).ConfigureAwait(false), treeSize) { Rebuilding = true };
        }

        try
        {
            using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT (SELECT projected_size FROM projections WHERE tenant_id = $t), (SELECT COUNT(*) FROM dead_letters WHERE tenant_id = $t)
                """;
            command.Parameters.AddWithValue("$t", tenantId);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var projected = reader.IsDBNull(0) ? 0UL : (ulong)reader.GetInt64(0);
            return new ProjectionStatus(projected, treeSize) { DeadLetters = reader.GetInt64(1) };
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            return new ProjectionStatus(0, treeSize) { Rebuilding = true };
        }
    }

    public async Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string tenantId, int limit, CancellationToken cancellationToken)
    {
        ThrowIfRebuilding();
        using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT idx, error, first_seen, last_seen, attempts FROM dead_letters WHERE tenant_id = $t ORDER BY idx LIMIT $limit";
        command.Parameters.AddWithValue("$t", tenantId);
        command.Parameters.AddWithValue("$limit", limit);
        var letters = new List<DeadLetter>();
        try
        {
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                letters.Add(new DeadLetter(
                    tenantId, (ulong)reader.GetInt64(0), reader.GetString(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero),
                    new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero), reader.GetInt32(4)));
            }
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            throw new ProjectionRebuildingException();
        }

        return letters;
    }

    public async Task<long> CountDeadLettersAsync(CancellationToken cancellationToken)
    {
        if (IsRebuilding)
        {
            return 0;
        }

        try
        {
            using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM dead_letters";
            return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            return 0;
        }
    }

    public async Task<int> RetryDeadLettersAsync(string tenantId, CancellationToken cancellationToken)
    {
        ThrowIfRebuilding();
        using var reading = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(reading, null, tenantId) is not { } num)
        {
            return 0;
        }

        using var turn = await readModelWriter.TakeAsync(cancellationToken).ConfigureAwait(false);
        var connection = turn.Connection;
        var indexes = new List<long>();
        using (var list = connection.CreateCommand())
        {
            list.CommandText = "SELECT idx FROM dead_letters WHERE tenant_id = $t ORDER BY idx";
            list.Parameters.AddWithValue("$t", tenantId);
            using var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                indexes.Add(reader.GetInt64(0));
            }
        }

        var projected = 0;
        using var snapshot = reading.BeginTransaction(deferred: true);
        using var transaction = connection.BeginTransaction();
        using (var writer = new Projector(connection, clock.GetUtcNow().UtcTicks))
        using (var release = connection.CreateCommand())
        {
            release.Transaction = transaction;
            release.CommandText = "DELETE FROM dead_letters WHERE tenant_id = $t AND idx = $idx";
            release.Parameters.AddWithValue("$t", tenantId);
            var idx = release.Parameters.Add("$idx", SqliteType.Integer);
            foreach (var index in indexes)
            {
                using var read = ReadEntriesCommand(reading, snapshot, num, index, index);
                using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }

                var entry = ReadEntry(reader, tenantId, num);
                if (entry.Error is null)
                {
                    idx.Value = index;
                    await release.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    writer.Project(entry);
                    projected++;
                }
                else
                {
                    writer.Project(entry);
                }
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return projected;
    }

    private void ThrowIfRebuilding()
    {
        if (IsRebuilding)
        {
            throw new ProjectionRebuildingException();
        }
    }

    private async Task<ulong> TryProjectedSizeAsync(string tenantId, CancellationToken cancellationToken)
    {
        // Damaged, or the new file before its tables exist: nothing of it counts yet.
        try
        {
            return await ProjectedSizeAsync(tenantId, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException)
        {
            return 0;
        }
    }

    /// <summary>
    /// At start: every log whose read models lag behind it (a new or older read-model file, or commits of it lost
    /// with a power cut) gets an outbox row for the missing entries, unless waiting outbox rows already cover them.
    /// Read models ahead of their log (a log file restored from an older backup) would name entries the log lacks:
    /// they are dropped and projected again from the log. Returns every tenant's log size.
    /// </summary>
    public Dictionary<string, ulong> Reconcile()
    {
        using var logConnection = log.Open();
        return Reconcile(logConnection, outbox.Acknowledged);
    }

    // Outbox rows up to acknowledged were projected into the file as it was (and wait only to be deleted): they cover
    // nothing for a new file, so only later rows count as covering.
    private Dictionary<string, ulong> Reconcile(SqliteConnection logConnection, long acknowledged)
    {
        var projected = new Dictionary<string, ulong>(StringComparer.Ordinal);
        using (var connection = readModels.Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT tenant_id, projected_size FROM projections";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                projected[reader.GetString(0)] = (ulong)reader.GetInt64(1);
            }
        }

        var sizes = new Dictionary<string, ulong>(StringComparer.Ordinal);
        using var transaction = logConnection.BeginTransaction();
        var missing = new List<(string TenantId, ulong First, ulong Last)>();
        var ahead = new List<(string TenantId, long Num)>();
        // Where each tenant's queued rows start, in one pass over the outbox: the outbox has no index on the tenant,
        // so asking per tenant would cost tenants × outbox rows at every start.
        var queuedFrom = new Dictionary<string, ulong>(StringComparer.Ordinal);
        using (var queued = logConnection.CreateCommand())
        {
            queued.Transaction = transaction;
            queued.CommandText = "SELECT tenant_id, MIN(first_idx) FROM outbox WHERE id > $acknowledged GROUP BY tenant_id";
            queued.Parameters.AddWithValue("$acknowledged", acknowledged);
            using var reader = queued.ExecuteReader();
            while (reader.Read())
            {
                queuedFrom[reader.GetString(0)] = (ulong)reader.GetInt64(1);
            }
        }

        using (var heads = logConnection.CreateCommand())
        {
            heads.Transaction = transaction;
            heads.CommandText = "SELECT h.tenant_id, h.size, t.num FROM tree_heads h JOIN tenants t ON t.id = h.tenant_id";
            using var reader = heads.ExecuteReader();
            while (reader.Read())
            {
                var tenantId = reader.GetString(0);
                var size = (ulong)reader.GetInt64(1);
                sizes[tenantId] = size;
                var from = projected.GetValueOrDefault(tenantId);
                if (from > size)
                {
                    ahead.Add((tenantId, reader.GetInt64(2)));
                    from = 0;
                }

                var coveredFrom = queuedFrom.TryGetValue(tenantId, out var queuedStart) ? Math.Min(size, queuedStart) : size;
                if (from < coveredFrom)
                {
                    missing.Add((tenantId, from, coveredFrom - 1));
                }
            }
        }

        if (ahead.Count > 0)
        {
            using var connection = readModels.Open();
            using var wipe = connection.BeginTransaction();
            foreach (var (tenantId, num) in ahead)
            {
                using var clear = connection.CreateCommand();
                clear.Transaction = wipe;
                clear.CommandText = ClearTenantSql;
                BindTenant(clear, tenantId, num);
                clear.ExecuteNonQuery();
            }

            wipe.Commit();
        }

        using var queue = logConnection.CreateCommand();
        queue.Transaction = transaction;
        queue.CommandText = "INSERT INTO outbox (tenant_id, first_idx, last_idx) VALUES ($t, $first, $last)";
        var tenant = queue.Parameters.Add("$t", SqliteType.Text);
        var first = queue.Parameters.Add("$first", SqliteType.Integer);
        var last = queue.Parameters.Add("$last", SqliteType.Integer);
        foreach (var range in missing)
        {
            // In slices, so one turn of the projector never has to read a whole log.
            for (var from = range.First; from <= range.Last; from += ReconcileSlice)
            {
                tenant.Value = range.TenantId;
                first.Value = (long)from;
                last.Value = (long)Math.Min(range.Last, from + ReconcileSlice - 1);
                queue.ExecuteNonQuery();
            }
        }

        transaction.Commit();
        return sizes;
    }

    private static void BindTenant(SqliteCommand command, string tenantId, long num)
    {
        command.Parameters.AddWithValue("$first", LogRowId.First(num));
        command.Parameters.AddWithValue("$last", LogRowId.Last(num));
        command.Parameters.AddWithValue("$num", num);
        command.Parameters.AddWithValue("$tenant", tenantId);
    }

    private async Task<ulong> ProjectedSizeAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT projected_size FROM projections WHERE tenant_id = $t";
        command.Parameters.AddWithValue("$t", tenantId);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long size ? (ulong)size : 0;
    }

    public async Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken)
    {
        using var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT e.received_at FROM (SELECT tenant_id, first_idx FROM outbox WHERE id > $acknowledged ORDER BY id LIMIT 1) o
            JOIN tenants t ON t.id = o.tenant_id
            JOIN log_entries e ON e.id = (t.num << 40) | o.first_idx
            """;
        command.Parameters.AddWithValue("$acknowledged", outbox.Acknowledged);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;
    }

    public async Task<long> CountOutboxBacklogAsync(int maxRows, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        using var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();

        // Rows up to the acknowledged id are projected and wait only for the sequencer to delete them.
        command.CommandText = """
            SELECT COALESCE(SUM(last_idx - first_idx + 1), 0)
            FROM (SELECT first_idx, last_idx FROM outbox WHERE id > $acknowledged ORDER BY id LIMIT $max)
            """;
        command.Parameters.AddWithValue("$acknowledged", outbox.Acknowledged);
        command.Parameters.AddWithValue("$max", maxRows);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken) =>
        ReadIntactAsync(() => SearchOnceAsync(query, cancellationToken));

    // A read of the read models: refused while they are rebuilt; a corruption it meets starts their rebuild.
    private async Task<T> ReadIntactAsync<T>(Func<Task<T>> read)
    {
        ThrowIfRebuilding();
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            throw new ProjectionRebuildingException();
        }
    }

    private async Task<QueryPage> SearchOnceAsync(EventQuery query, CancellationToken cancellationToken)
    {
        using var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(connection, null, query.TenantId) is not { } num)
        {
            return new QueryPage([], false);
        }

        using var readModel = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = readModel.CreateCommand();
        command.CommandText = BuildSearch(query, command.Parameters, num);
        var rows = new List<IndexedRow>(query.Limit + 1);
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add(new IndexedRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4), reader.GetString(5)));
            }
        }

        var hasMore = rows.Count > query.Limit;
        if (hasMore)
        {
            rows.RemoveAt(rows.Count - 1);
        }

        var hits = new List<QueryHit>(rows.Count);
        using var entry = connection.CreateCommand();
        entry.CommandText = "SELECT event_id, leaf, leaf_hash, received_at, purged_by FROM log_entries WHERE id = $id";
        var id = entry.Parameters.Add("$id", SqliteType.Integer);
        foreach (var row in rows)
        {
            var index = row.Index;
            id.Value = LogRowId.Of(num, (ulong)index);
            using var reader = await entry.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ReportDamage($"the read models name entry {index} of tenant {query.TenantId}, which the log does not have");
                throw new ProjectionRebuildingException();
            }

            if (!reader.IsDBNull(4))
            {
                // Purged, its rows not yet deleted by the projector (it deletes them when it projects the purge record).
                continue;
            }

            var logEntry = new LogEntry(
                (ulong)index, new Guid((byte[])reader[0], bigEndian: true), (byte[])reader[1], new Hash((byte[])reader[2]), new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero));
            if (!row.Agrees(logEntry))
            {
                ReportDamage($"the indexed row of entry {index} of tenant {query.TenantId} disagrees with the log");
                throw new ProjectionRebuildingException();
            }

            hits.Add(new QueryHit(logEntry, new QueryPosition(row.Occurred, (ulong)index)));
        }

        return new QueryPage(hits, hasMore);
    }

    // The fields a read-model row is checked against; null when the log entry itself is altered or unreadable: that is
    // the log's damage, reported where the entry is served, not the read models'.
    private static LeafFields? ComparableFields(LogEntry entry)
    {
        if (!MerkleHasher.HashLeaf(entry.Leaf).Equals(entry.LeafHash))
        {
            return null;
        }

        try
        {
            return LeafFields.Read(entry.Leaf);
        }
        catch (Exception e) when (ProjectionErrors.IsEntryFailure(e))
        {
            return null;
        }
    }

    // A row of event_index as a search read it, checked against the log entry it names before it is served: a byte
    // flip inside the file that SQLite's own checks miss still shows as a row that disagrees with its entry. Only the
    // columns of the covering time index are read (actor_id would cost a lookup per row and change the plans).
    private sealed record IndexedRow(long Occurred, long Index, long RowOccurred, string ActorType, string Action, string Outcome)
    {
        public bool Agrees(LogEntry entry)
        {
            if (ComparableFields(entry) is not { } fields)
            {
                return true;
            }

            return fields.OccurredAt == Occurred && fields.OccurredAt == RowOccurred && fields.ActorType == ActorType && fields.Action == Action && fields.Outcome == Outcome;
        }
    }

    // Filters become conditions on event_index (alias e); each index of event_index ends in (occurred_at, idx), so
    // SQLite can walk the chosen index in the requested order and stop after limit + 1 rows.
    private static string BuildSearch(EventQuery query, SqliteParameterCollection parameters, long num)
    {
        // A target filter drives the search from event_targets (CROSS JOIN fixes the join order; DISTINCT because an
        // event may name several targets of one type); otherwise an index of event_index does. The snapshot bound is
        // written +idx so it never steers SQLite onto a primary key, which would then sort every row of the tenant.
        var byTarget = query.TargetType is not null || query.TargetId is not null;
        var sql = new StringBuilder(byTarget
            ? "SELECT DISTINCT t.occurred_at, t.idx, e.occurred_at, e.actor_type, e.action, e.outcome FROM event_targets t CROSS JOIN event_index e ON e.tenant_num = t.tenant_num AND e.idx = t.idx WHERE t.tenant_num = $num AND +t.idx < $snapshot"
            : "SELECT e.occurred_at, e.idx, e.occurred_at, e.actor_type, e.action, e.outcome FROM event_index e WHERE e.tenant_num = $num AND +e.idx < $snapshot");
        parameters.AddWithValue("$num", num);
        parameters.AddWithValue("$snapshot", (long)Math.Min(query.SnapshotSize, LogRowId.MaxIndex + 1));
        Filter(sql, parameters, "t.target_type = $targetType", "$targetType", query.TargetType);
        Filter(sql, parameters, "t.target_id = $targetId", "$targetId", query.TargetId);
        Filter(sql, parameters, "e.occurred_at >= $from", "$from", query.From?.UtcTicks);
        Filter(sql, parameters, "e.occurred_at < $to", "$to", query.To?.UtcTicks);
        Filter(sql, parameters, "e.actor_id = $actor", "$actor", query.ActorId);
        Filter(sql, parameters, "e.actor_type = $actorType", "$actorType", query.ActorType);
        Filter(sql, parameters, "e.outcome = $outcome", "$outcome", query.Outcome);
        if (query.Action is { } action)
        {
            if (query.ActionIsPrefix)
            {
                // A prefix usually matches many actions: walk the time index (unary + keeps SQLite off the action
                // index, which would need a sort of every match) and test the prefix on each row.
                sql.Append(" AND +e.action >= $action AND +e.action < $actionEnd");
                parameters.AddWithValue("$action", action);
                parameters.AddWithValue("$actionEnd", action + "\uffff");
            }
            else
            {
                sql.Append(" AND e.action = $action");
                parameters.AddWithValue("$action", action);
            }
        }

        if (query.Text is { } text)
        {
            sql.Append(" AND ((e.tenant_num << 40) | e.idx) IN (SELECT rowid FROM event_text WHERE event_text MATCH $text AND rowid BETWEEN $firstRow AND $lastRow)");
            parameters.AddWithValue("$text", FtsQuery(text));
            parameters.AddWithValue("$firstRow", LogRowId.First(num));
            parameters.AddWithValue("$lastRow", LogRowId.Last(num));
        }

        var ascending = query.Ascending;
        var order = byTarget ? "t" : "e";
        if (query.After is { } after)
        {
            sql.Append(ascending ? $" AND ({order}.occurred_at, {order}.idx) > ($afterAt, $afterIdx)" : $" AND ({order}.occurred_at, {order}.idx) < ($afterAt, $afterIdx)");
            parameters.AddWithValue("$afterAt", after.OccurredAtTicks);
            parameters.AddWithValue("$afterIdx", (long)after.Index);
        }

        sql.Append(ascending ? $" ORDER BY {order}.occurred_at, {order}.idx" : $" ORDER BY {order}.occurred_at DESC, {order}.idx DESC");
        sql.Append(" LIMIT $limit");
        parameters.AddWithValue("$limit", query.Limit + 1);
        return sql.ToString();
    }

    // One condition of the search with its parameter, when the filter is set.
    private static void Filter(StringBuilder sql, SqliteParameterCollection parameters, string condition, string name, object? value)
    {
        if (value is not null)
        {
            sql.Append(" AND ").Append(condition);
            parameters.AddWithValue(name, value);
        }
    }

    // Every term quoted: user text is matched as words, never interpreted as FTS5 query syntax.
    private static string FtsQuery(string text) =>
        string.Join(' ', text.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(term => "\"" + term.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));

    // The outbox rows waiting (up to maxEntries entries), with their entries read and parsed, all from one snapshot.
    private static async Task<PendingProjection> ReadPendingAsync(SqliteConnection connection, int maxEntries, long acknowledged, CancellationToken cancellationToken)
    {
        using var snapshot = connection.BeginTransaction(deferred: true);
        var ranges = new List<(long Id, string TenantId, long Num, long First, long Last)>();
        using (var outbox = connection.CreateCommand())
        {
            outbox.Transaction = snapshot;
            outbox.CommandText = "SELECT o.id, o.tenant_id, t.num, o.first_idx, o.last_idx FROM outbox o JOIN tenants t ON t.id = o.tenant_id WHERE o.id > $acknowledged ORDER BY o.id LIMIT $n";
            outbox.Parameters.AddWithValue("$acknowledged", acknowledged);
            outbox.Parameters.AddWithValue("$n", Math.Max(1, maxEntries));
            using var reader = await outbox.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var entries = 0L;
            while (entries < maxEntries && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ranges.Add((reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
                entries += ranges[^1].Last - ranges[^1].First + 1;
            }
        }

        var pending = new PendingProjection(ranges.Count > 0 ? ranges[^1].Id : null);
        // Each append request leaves its own outbox row, so single-event requests leave thousands of one-entry rows;
        // a tenant's consecutive rows are read as one range.
        foreach (var tenant in ranges.GroupBy(r => (r.TenantId, r.Num)))
        {
            var merged = new List<(long First, long Last)>();
            foreach (var (_, _, _, first, last) in tenant.OrderBy(r => r.First))
            {
                if (merged.Count > 0 && first <= merged[^1].Last + 1)
                {
                    merged[^1] = (merged[^1].First, Math.Max(merged[^1].Last, last));
                }
                else
                {
                    merged.Add((first, last));
                }
            }

            foreach (var (first, last) in merged)
            {
                var mayHoldPurgeRecord = false;
                using (var read = ReadEntriesCommand(connection, snapshot, tenant.Key.Num, first, last))
                using (var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var entry = ReadEntry(reader, tenant.Key.TenantId, tenant.Key.Num);
                        mayHoldPurgeRecord |= entry.Fields?.Action == RetentionPass.PurgeAction;
                        pending.Entries.Add(entry);
                    }
                }

                // Only a range holding a purge record can have purged entries to drop (a client event with the purge
                // records' action costs one query that finds nothing).
                if (mayHoldPurgeRecord)
                {
                    await ReadPurgedAsync(connection, snapshot, tenant.Key.Num, first, last, pending.PurgedRows, cancellationToken).ConfigureAwait(false);
                }
            }

            pending.HandledRanges[tenant.Key.TenantId] = merged;
        }

        return pending;
    }

    // The entries purged by purge records in [first, last]: they commit with their record, so they are visible in the
    // snapshot that reads the record. Their rows are deleted on every delivery of the record (idempotent).
    private static async Task ReadPurgedAsync(SqliteConnection connection, SqliteTransaction snapshot, long num, long first, long last, List<(long Num, long RowId)> purged, CancellationToken cancellationToken)
    {
        using var read = connection.CreateCommand();
        read.Transaction = snapshot;
        read.CommandText = "SELECT id FROM log_entries WHERE purged_by BETWEEN $first AND $last AND id BETWEEN $from AND $to";
        read.Parameters.AddWithValue("$first", first);
        read.Parameters.AddWithValue("$last", last);
        read.Parameters.AddWithValue("$from", LogRowId.First(num));
        read.Parameters.AddWithValue("$to", LogRowId.Last(num));
        using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            purged.Add((num, reader.GetInt64(0)));
        }
    }

    private static SqliteCommand ReadEntriesCommand(SqliteConnection connection, SqliteTransaction transaction, long num, long first, long last)
    {
        var read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = "SELECT id, event_id, leaf, purged_by FROM log_entries WHERE id BETWEEN $first AND $last ORDER BY id";
        read.Parameters.AddWithValue("$first", LogRowId.Of(num, (ulong)first));
        read.Parameters.AddWithValue("$last", LogRowId.Of(num, (ulong)last));
        return read;
    }

    // An entry whose leaf the read models cannot index carries the reason instead of its fields (a dead letter).
    private static ProjectedEntry ReadEntry(SqliteDataReader reader, string tenantId, long num)
    {
        var rowId = reader.GetInt64(0);
        if (!reader.IsDBNull(3))
        {
            // Purged (retention): nothing of it is indexed, and it is no dead letter.
            return new ProjectedEntry(tenantId, num, rowId, (byte[])reader[1], null, null);
        }

        try
        {
            return new ProjectedEntry(tenantId, num, rowId, (byte[])reader[1], LeafFields.Read((byte[])reader[2]), null);
        }
        catch (Exception e) when (ProjectionErrors.IsEntryFailure(e))
        {
            return new ProjectedEntry(tenantId, num, rowId, (byte[])reader[1], null, ProjectionErrors.Describe(e));
        }
    }

    // Fields null: Error says why it is a dead letter, or it is null for a purged entry.
    private sealed record ProjectedEntry(string TenantId, long TenantNumber, long RowId, byte[] EventId, LeafFields? Fields, string? Error);

    private sealed class PendingProjection(long? lastOutboxId)
    {
        public long? LastOutboxId { get; } = lastOutboxId;

        public List<ProjectedEntry> Entries { get; } = [];

        /// <summary>Entries purged by purge records this turn handles: their rows are deleted.</summary>
        public List<(long Num, long RowId)> PurgedRows { get; } = [];

        /// <summary>Per tenant, the index ranges this turn handles.</summary>
        public Dictionary<string, List<(long First, long Last)>> HandledRanges { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Writes read-model rows inside the transaction open on the connection (raw statements: this runs per event).</summary>
    private sealed class Projector(SqliteConnection connection, long nowTicks) : IDisposable
    {
        private readonly RawInsert _index = new(connection, "INSERT OR IGNORE INTO event_index (tenant_num, idx, event_id, occurred_at, actor_type, actor_id, action, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        private readonly RawInsert _target = new(connection, "INSERT OR IGNORE INTO event_targets (tenant_num, target_id, target_type, occurred_at, idx) VALUES (?1, ?2, ?3, ?4, ?5)");
        private readonly RawInsert _text = new(connection, "INSERT INTO event_text (rowid, body) VALUES (?1, ?2)");
        private readonly RawInsert _removeIndex = new(connection, "DELETE FROM event_index WHERE tenant_num = ?1 AND idx = ?2");
        private readonly RawInsert _removeTargets = new(connection, "DELETE FROM event_targets WHERE tenant_num = ?1 AND idx = ?2");
        private readonly RawInsert _removeText = new(connection, "DELETE FROM event_text WHERE rowid = ?1");
        private readonly RawInsert _deadLetter = new(connection, """
            INSERT INTO dead_letters (tenant_id, idx, error, first_seen, last_seen, attempts) VALUES (?1, ?2, ?3, ?4, ?4, 1)
            ON CONFLICT (tenant_id, idx) DO UPDATE SET error = excluded.error, last_seen = excluded.last_seen, attempts = attempts + 1
            """);

        /// <summary>
        /// Projects one entry; 0 when its event is indexed already (a redelivered outbox row: the inbox check), or when
        /// it cannot be indexed: then it is recorded as a dead letter, and the turn goes on with the next entry.
        /// </summary>
        public int Project(ProjectedEntry entry)
        {
            var index = (long)LogRowId.IndexOf(entry.RowId);
            if (entry.Fields is not { } fields)
            {
                if (entry.Error is null)
                {
                    return 0;
                }

                _deadLetter.Text(1, entry.TenantId).Int64(2, index).Text(3, entry.Error!).Int64(4, nowTicks).Execute();
                return 0;
            }

            var added = _index.Int64(1, entry.TenantNumber).Int64(2, index).Blob(3, entry.EventId).Int64(4, fields.OccurredAt)
                .Text(5, fields.ActorType).Text(6, fields.ActorId).Text(7, fields.Action).Text(8, fields.Outcome).Execute();
            if (added == 0)
            {
                return 0;
            }

            foreach (var (type, id) in fields.Targets)
            {
                _target.Int64(1, entry.TenantNumber).Text(2, id).Text(3, type).Int64(4, fields.OccurredAt).Int64(5, index).Execute();
            }

            _text.Int64(1, entry.RowId).Text(2, fields.Text).Execute();
            return 1;
        }

        /// <summary>Deletes a purged entry's rows (none when they are gone already: a redelivered purge record).</summary>
        public void Remove(long tenantNumber, long rowId)
        {
            var index = (long)LogRowId.IndexOf(rowId);
            _removeIndex.Int64(1, tenantNumber).Int64(2, index).Execute();
            _removeTargets.Int64(1, tenantNumber).Int64(2, index).Execute();
            _removeText.Int64(1, rowId).Execute();
        }

        public void Dispose()
        {
            _removeIndex.Dispose();
            _removeTargets.Dispose();
            _removeText.Dispose();
            _index.Dispose();
            _target.Dispose();
            _text.Dispose();
            _deadLetter.Dispose();
        }
    }
}
