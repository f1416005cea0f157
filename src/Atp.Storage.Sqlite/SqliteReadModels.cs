using System.Globalization;
using System.Text;
using System.Text.Json;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine's read models: the projector drains the outbox into event_index, event_targets and the
/// FTS5 table event_text; searches read those and then the log rows they point at. A projection batch is one
/// short write transaction, so the sequencer's group commits interleave with it.
/// </summary>
internal sealed class SqliteReadModels(SqliteConnections connections, TenantNumbers tenantNumbers)
{
    private const int OutboxRowsPerBatch = 512;

    public async Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction();
        var rows = new List<(long Id, string TenantId, long Num, long First, long Last)>();
        using (var outbox = connection.CreateCommand())
        {
            outbox.Transaction = transaction;
            outbox.CommandText = "SELECT o.id, o.tenant_id, t.num, o.first_idx, o.last_idx FROM outbox o JOIN tenants t ON t.id = o.tenant_id ORDER BY o.id LIMIT $n";
            outbox.Parameters.AddWithValue("$n", OutboxRowsPerBatch);
            using var reader = await outbox.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var entries = 0L;
            while (entries < maxEntries && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = (reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
                rows.Add(row);
                entries += row.Item5 - row.Item4 + 1;
            }
        }

        if (rows.Count == 0)
        {
            return 0;
        }

        var projected = 0;
        using (var writer = new Projector(connection, transaction))
        {
            foreach (var (_, tenantId, num, first, last) in rows)
            {
                projected += await writer.ProjectRangeAsync(num, (ulong)first, (ulong)last, cancellationToken).ConfigureAwait(false);
                writer.Advance(tenantId, (ulong)last + 1);
            }
        }

        using (var done = connection.CreateCommand())
        {
            done.Transaction = transaction;
            done.CommandText = "DELETE FROM outbox WHERE id <= $id";
            done.Parameters.AddWithValue("$id", rows[^1].Id);
            await done.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return projected;
    }

    public async Task<ulong> RebuildAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(connection, null, tenantId) is not { } num)
        {
            throw new InvalidOperationException($"No tenant '{tenantId}'.");
        }

        using var transaction = connection.BeginTransaction();
        using (var clear = connection.CreateCommand())
        {
            clear.Transaction = transaction;
            clear.CommandText = """
                DELETE FROM event_text WHERE rowid BETWEEN $first AND $last;
                DELETE FROM event_targets WHERE tenant_num = $num;
                DELETE FROM event_index WHERE tenant_num = $num;
                DELETE FROM outbox WHERE tenant_id = $tenant;
                DELETE FROM projections WHERE tenant_id = $tenant;
                """;
            clear.Parameters.AddWithValue("$first", LogRowId.First(num));
            clear.Parameters.AddWithValue("$last", LogRowId.Last(num));
            clear.Parameters.AddWithValue("$num", num);
            clear.Parameters.AddWithValue("$tenant", tenantId);
            await clear.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // The whole committed log, read under this write transaction, so no append can slip between the size and the rows.
        ulong size;
        using (var head = connection.CreateCommand())
        {
            head.Transaction = transaction;
            head.CommandText = "SELECT size FROM tree_heads WHERE tenant_id = $t";
            head.Parameters.AddWithValue("$t", tenantId);
            size = (ulong)(long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L);
        }

        using (var writer = new Projector(connection, transaction))
        {
            if (size > 0)
            {
                await writer.ProjectRangeAsync(num, 0, size - 1, cancellationToken).ConfigureAwait(false);
            }

            writer.Advance(tenantId, size);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return size;
    }

    public async Task<ProjectionStatus?> StatusAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT h.size, COALESCE(p.projected_size, 0) FROM tree_heads h LEFT JOIN projections p ON p.tenant_id = h.tenant_id WHERE h.tenant_id = $t";
        command.Parameters.AddWithValue("$t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? new ProjectionStatus((ulong)reader.GetInt64(1), (ulong)reader.GetInt64(0)) : null;
    }

    public async Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT e.received_at FROM (SELECT tenant_id, first_idx FROM outbox ORDER BY id LIMIT 1) o
            JOIN tenants t ON t.id = o.tenant_id
            JOIN log_entries e ON e.id = (t.num << 40) | o.first_idx
            """;
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;
    }

    public async Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(connection, null, query.TenantId) is not { } num)
        {
            return new QueryPage([], false);
        }

        using var command = connection.CreateCommand();
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
        // A selective target drives the search from event_targets (CROSS JOIN fixes the join order); otherwise an
        // index of event_index does. The snapshot bound is written +e.idx so it never steers SQLite onto the primary
        // key, which would then sort every row of the tenant.
        var byTarget = query.TargetType is not null && query.TargetId is not null;
        var sql = new StringBuilder(byTarget
            ? "SELECT t.occurred_at, t.idx FROM event_targets t CROSS JOIN event_index e ON e.tenant_num = t.tenant_num AND e.idx = t.idx WHERE t.tenant_num = $num AND t.target_type = $targetType AND t.target_id = $targetId AND +t.idx < $snapshot"
            : "SELECT e.occurred_at, e.idx FROM event_index e WHERE e.tenant_num = $num AND +e.idx < $snapshot");
        parameters.AddWithValue("$num", num);
        parameters.AddWithValue("$snapshot", (long)Math.Min(query.SnapshotSize, LogRowId.MaxIndex + 1));
        if (query.From is { } from)
        {
            sql.Append(" AND e.occurred_at >= $from");
            parameters.AddWithValue("$from", from.UtcTicks);
        }

        if (query.To is { } to)
        {
            sql.Append(" AND e.occurred_at < $to");
            parameters.AddWithValue("$to", to.UtcTicks);
        }

        if (query.ActorId is { } actor)
        {
            sql.Append(" AND e.actor_id = $actor");
            parameters.AddWithValue("$actor", actor);
        }

        if (query.ActorType is { } actorType)
        {
            sql.Append(" AND e.actor_type = $actorType");
            parameters.AddWithValue("$actorType", actorType);
        }

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

        if (query.Outcome is { } outcome)
        {
            sql.Append(" AND e.outcome = $outcome");
            parameters.AddWithValue("$outcome", outcome);
        }

        if (byTarget)
        {
            parameters.AddWithValue("$targetType", query.TargetType);
            parameters.AddWithValue("$targetId", query.TargetId);
        }
        else if (query.TargetType is { } targetType)
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM event_targets t WHERE t.tenant_num = $num AND t.idx = e.idx AND t.target_type = $targetType)");
            parameters.AddWithValue("$targetType", targetType);
        }
        else if (query.TargetId is { } targetIdOnly)
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM event_targets t WHERE t.tenant_num = $num AND t.idx = e.idx AND t.target_id = $targetId)");
            parameters.AddWithValue("$targetId", targetIdOnly);
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

    // Every term quoted: user text is matched as words, never interpreted as FTS5 query syntax.
    private static string FtsQuery(string text) =>
        string.Join(' ', text.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(term => "\"" + term.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));

    /// <summary>Writes read-model rows for log entries inside the caller's transaction.</summary>
    private sealed class Projector : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteTransaction _transaction;
        private readonly SqliteCommand _read;
        private readonly SqliteCommand _index;
        private readonly SqliteCommand _target;
        private readonly SqliteCommand _text;
        private readonly SqliteCommand _advance;

        public Projector(SqliteConnection connection, SqliteTransaction transaction)
        {
            _connection = connection;
            _transaction = transaction;
            _read = Command("SELECT id, event_id, leaf FROM log_entries WHERE id BETWEEN $1 AND $2 ORDER BY id", 2);
            _index = Command("INSERT OR IGNORE INTO event_index (tenant_num, idx, event_id, occurred_at, actor_type, actor_id, action, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8);
            _target = Command("INSERT OR IGNORE INTO event_targets (tenant_num, idx, target_type, target_id, occurred_at) VALUES ($1, $2, $3, $4, $5)", 5);
            _text = Command("INSERT INTO event_text (rowid, body) VALUES ($1, $2)", 2);
            _advance = Command("INSERT INTO projections (tenant_id, projected_size) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET projected_size = MAX(projected_size, excluded.projected_size)", 2);
        }

        public async Task<int> ProjectRangeAsync(long num, ulong first, ulong last, CancellationToken cancellationToken)
        {
            var projected = 0;
            _read.Parameters[0].Value = LogRowId.Of(num, first);
            _read.Parameters[1].Value = LogRowId.Of(num, last);
            using var reader = await _read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var rowId = reader.GetInt64(0);
                var fields = LeafFields.Read((byte[])reader[2]);
                var index = (long)LogRowId.IndexOf(rowId);
                Set(_index, num, index, (byte[])reader[1], fields.OccurredAt, fields.ActorType, fields.ActorId, fields.Action, fields.Outcome);

                // The inbox check: an entry whose event is already indexed (a redelivered outbox row) adds nothing.
                if (await _index.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
                {
                    continue;
                }

                foreach (var (type, id) in fields.Targets)
                {
                    Set(_target, num, index, type, id, fields.OccurredAt);
                    await _target.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                Set(_text, rowId, fields.Text);
                await _text.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                projected++;
            }

            return projected;
        }

        public void Advance(string tenantId, ulong size)
        {
            Set(_advance, tenantId, (long)size);
            _advance.ExecuteNonQuery();
        }

        public void Dispose()
        {
            _read.Dispose();
            _index.Dispose();
            _target.Dispose();
            _text.Dispose();
            _advance.Dispose();
        }

        private SqliteCommand Command(string sql, int parameterCount)
        {
            var command = _connection.CreateCommand();
            command.Transaction = _transaction;
            command.CommandText = sql;
            for (var i = 1; i <= parameterCount; i++)
            {
                command.Parameters.Add(new SqliteParameter("$" + i.ToString(CultureInfo.InvariantCulture), null));
            }

            return command;
        }

        private static void Set(SqliteCommand command, params object[] values)
        {
            for (var i = 0; i < values.Length; i++)
            {
                command.Parameters[i].Value = values[i];
            }
        }
    }
}
