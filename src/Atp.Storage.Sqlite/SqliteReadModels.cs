using System.Text;
using System.Text.Json;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine's read models, in their own file (<see cref="ReadModelSchema"/>): the projector drains the log
/// file's outbox into event_index, event_targets and the FTS5 table event_text; searches read those and then the log
/// rows they point at. The projector reads and parses on a snapshot of the log, writes the rows on the read-model
/// file (its own write lock: appends never wait for it), then acknowledges the outbox rows it handled, which the
/// sequencer deletes in its next group commit (<see cref="OutboxProgress"/>).
/// </summary>
internal sealed class SqliteReadModels(SqliteConnections log, WriteConnection logWriter, SqliteConnections readModels, WriteConnection readModelWriter, TenantNumbers tenantNumbers, OutboxProgress outbox)
{
    private const ulong ReconcileSlice = 10_000;

    // Everything the read models hold of one tenant.
    private const string ClearTenantSql = """
        DELETE FROM event_text WHERE rowid BETWEEN $first AND $last;
        DELETE FROM event_targets WHERE tenant_num = $num;
        DELETE FROM event_index WHERE tenant_num = $num;
        DELETE FROM projections WHERE tenant_id = $tenant;
        """;

    public async Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken)
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
        using (var turn = await readModelWriter.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            using var transaction = turn.Connection.BeginTransaction();
            using (var writer = new Projector(turn.Connection))
            {
                foreach (var entry in pending.Entries)
                {
                    projected += writer.Project(entry);
                }

                foreach (var (tenantId, size) in pending.ProjectedSizes)
                {
                    writer.Advance(tenantId, size);
                }
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        // Only after the rows are in: a crash before the sequencer deletes them redelivers these outbox rows, and the
        // inbox makes that a no-op. Outbox ids grow in commit order, so every id up to the last one read was read.
        outbox.Acknowledge(lastOutboxId);
        return projected;
    }

    public async Task<ulong> RebuildAsync(string tenantId, CancellationToken cancellationToken)
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

        using (var writer = new Projector(connection))
        {
            if (size > 0)
            {
                using var read = ReadEntriesCommand(reading, snapshot, num, 0, (long)size - 1);
                using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    writer.Project(ReadEntry(reader, num));
                }
            }

            writer.Advance(tenantId, size);
        }

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

        return new ProjectionStatus(await ProjectedSizeAsync(tenantId, cancellationToken).ConfigureAwait(false), treeSize);
    }

    /// <summary>
    /// At start: every log whose read models lag behind it (a new or older read-model file, or commits of it lost
    /// with a power cut) gets an outbox row for the missing entries, unless waiting outbox rows already cover them.
    /// Read models ahead of their log (a log file restored from an older backup) would name entries the log lacks:
    /// they are dropped and projected again from the log.
    /// </summary>
    public void Reconcile()
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

        using var logConnection = log.Open();
        using var transaction = logConnection.BeginTransaction();
        var missing = new List<(string TenantId, ulong First, ulong Last)>();
        var ahead = new List<(string TenantId, long Num)>();
        using (var heads = logConnection.CreateCommand())
        {
            heads.Transaction = transaction;
            heads.CommandText = """
                SELECT h.tenant_id, h.size, (SELECT MIN(first_idx) FROM outbox o WHERE o.tenant_id = h.tenant_id), t.num
                FROM tree_heads h JOIN tenants t ON t.id = h.tenant_id
                """;
            using var reader = heads.ExecuteReader();
            while (reader.Read())
            {
                var size = (ulong)reader.GetInt64(1);
                var from = projected.GetValueOrDefault(reader.GetString(0));
                if (from > size)
                {
                    ahead.Add((reader.GetString(0), reader.GetInt64(3)));
                    from = 0;
                }

                var coveredFrom = reader.IsDBNull(2) ? size : Math.Min(size, (ulong)reader.GetInt64(2));
                if (from < coveredFrom)
                {
                    missing.Add((reader.GetString(0), from, coveredFrom - 1));
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

    public async Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken)
    {
        using var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(connection, null, query.TenantId) is not { } num)
        {
            return new QueryPage([], false);
        }

        using var readModel = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = readModel.CreateCommand();
        command.CommandText = BuildSearch(query, command.Parameters, num);
        var positions = new List<(long Occurred, long Index)>(query.Limit + 1);
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                positions.Add((reader.GetInt64(0), reader.GetInt64(1)));
            }
        }

        var hasMore = positions.Count > query.Limit;
        if (hasMore)
        {
            positions.RemoveAt(positions.Count - 1);
        }

        var hits = new List<QueryHit>(positions.Count);
        using var entry = connection.CreateCommand();
        entry.CommandText = "SELECT event_id, leaf, leaf_hash, received_at FROM log_entries WHERE id = $id";
        var id = entry.Parameters.Add("$id", SqliteType.Integer);
        foreach (var (occurred, index) in positions)
        {
            id.Value = LogRowId.Of(num, (ulong)index);
            using var reader = await entry.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new InvalidOperationException($"The read model names entry {index} of tenant {query.TenantId}, which the log does not have.");
            }

            var logEntry = new LogEntry(
                (ulong)index, new Guid((byte[])reader[0], bigEndian: true), (byte[])reader[1], new Hash((byte[])reader[2]), new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero));
            hits.Add(new QueryHit(logEntry, new QueryPosition(occurred, (ulong)index)));
        }

        return new QueryPage(hits, hasMore);
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
            ? "SELECT DISTINCT t.occurred_at, t.idx FROM event_targets t CROSS JOIN event_index e ON e.tenant_num = t.tenant_num AND e.idx = t.idx WHERE t.tenant_num = $num AND +t.idx < $snapshot"
            : "SELECT e.occurred_at, e.idx FROM event_index e WHERE e.tenant_num = $num AND +e.idx < $snapshot");
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
                using var read = ReadEntriesCommand(connection, snapshot, tenant.Key.Num, first, last);
                using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    pending.Entries.Add(ReadEntry(reader, tenant.Key.Num));
                }
            }

            pending.ProjectedSizes[tenant.Key.TenantId] = (ulong)merged.Max(r => r.Last) + 1;
        }

        return pending;
    }

    private static SqliteCommand ReadEntriesCommand(SqliteConnection connection, SqliteTransaction transaction, long num, long first, long last)
    {
        var read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = "SELECT id, event_id, leaf FROM log_entries WHERE id BETWEEN $first AND $last ORDER BY id";
        read.Parameters.AddWithValue("$first", LogRowId.Of(num, (ulong)first));
        read.Parameters.AddWithValue("$last", LogRowId.Of(num, (ulong)last));
        return read;
    }

    private static ProjectedEntry ReadEntry(SqliteDataReader reader, long num)
    {
        var rowId = reader.GetInt64(0);
        return new ProjectedEntry(num, rowId, (byte[])reader[1], LeafFields.Read((byte[])reader[2]));
    }

    private sealed record ProjectedEntry(long TenantNumber, long RowId, byte[] EventId, LeafFields Fields);

    private sealed class PendingProjection(long? lastOutboxId)
    {
        public long? LastOutboxId { get; } = lastOutboxId;

        public List<ProjectedEntry> Entries { get; } = [];

        public Dictionary<string, ulong> ProjectedSizes { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Writes read-model rows inside the transaction open on the connection (raw statements: this runs per event).</summary>
    private sealed class Projector(SqliteConnection connection) : IDisposable
    {
        private readonly RawInsert _index = new(connection, "INSERT OR IGNORE INTO event_index (tenant_num, idx, event_id, occurred_at, actor_type, actor_id, action, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        private readonly RawInsert _target = new(connection, "INSERT OR IGNORE INTO event_targets (tenant_num, target_id, target_type, occurred_at, idx) VALUES (?1, ?2, ?3, ?4, ?5)");
        private readonly RawInsert _text = new(connection, "INSERT INTO event_text (rowid, body) VALUES (?1, ?2)");
        private readonly RawInsert _advance = new(connection, "INSERT INTO projections (tenant_id, projected_size) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO UPDATE SET projected_size = MAX(projected_size, excluded.projected_size)");

        /// <summary>Projects one entry; 0 when its event is indexed already (a redelivered outbox row: the inbox check).</summary>
        public int Project(ProjectedEntry entry)
        {
            var fields = entry.Fields;
            var index = (long)LogRowId.IndexOf(entry.RowId);
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

        public void Advance(string tenantId, ulong size) => _advance.Text(1, tenantId).Int64(2, (long)size).Execute();

        public void Dispose()
        {
            _index.Dispose();
            _target.Dispose();
            _text.Dispose();
            _advance.Dispose();
        }
    }
}
