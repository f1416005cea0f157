using System.Text;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// The scale-out engine's read models. Any node's projector claims the outbox rows of one tenant that no other
/// projector holds (<c>atp.claim_outbox</c>: a per-tenant advisory lock and <c>FOR UPDATE SKIP LOCKED</c>), then
/// projects them as that tenant, under row-level security, in one transaction. Searches run as the tenant too.
/// </summary>
internal sealed class PostgresReadModels(NpgsqlDataSource dataSource, RecentLeaves recent)
{
    private const int OutboxRowsPerClaim = 512;

    // The projector's per-tenant advisory lock namespace ('atpr'), shared with atp.claim_outbox.
    private const int ProjectorLock = 1634758770;

    public async Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<(string Tenant, long Id, long First, long Last)>();
        await using (var claim = new NpgsqlCommand("SELECT tenant_id, id, first_idx, last_idx FROM atp.claim_outbox($1)", connection, transaction))
        {
            claim.Parameters.Add(new NpgsqlParameter<int> { TypedValue = OutboxRowsPerClaim });
            await using var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var entries = 0L;
            while (entries < maxEntries && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
                entries += rows[^1].Last - rows[^1].First + 1;
            }
        }

        if (rows.Count == 0)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }

        var tenantId = rows[0].Tenant;
        await SetTenantAsync(connection, transaction, tenantId, cancellationToken).ConfigureAwait(false);
        var first = rows[0].First;
        var last = rows[^1].Last;
        var projected = await ProjectRangeAsync(connection, transaction, tenantId, first, last, recent.Take(tenantId, first, last), cancellationToken).ConfigureAwait(false);
        await using (var done = new NpgsqlCommand("DELETE FROM atp.outbox WHERE tenant_id = $1 AND id = ANY($2)", connection, transaction))
        {
            done.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            done.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => r.Id).ToArray() });
            await done.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await AdvanceAsync(connection, transaction, tenantId, rows[^1].Last + 1, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return projected;
    }

    public async Task<ulong> RebuildAsync(string tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await SetTenantAsync(connection, transaction, tenantId, cancellationToken).ConfigureAwait(false);

        // No projector of any node touches the tenant meanwhile, and its tree head lock holds appends back, so the
        // rebuilt models cover exactly the committed log.
        await using (var prepare = new NpgsqlBatch(connection, transaction))
        {
            prepare.BatchCommands.Add(TenantScope.Command($"SELECT pg_advisory_xact_lock({ProjectorLock}, hashtext($1))", tenantId));
            foreach (var table in new[] { "event_index", "outbox", "projections" })
            {
                prepare.BatchCommands.Add(TenantScope.Command($"DELETE FROM atp.{table} WHERE tenant_id = $1", tenantId));
            }

            await prepare.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        long size;
        await using (var head = new NpgsqlCommand("SELECT size FROM atp.tree_heads WHERE tenant_id = $1 FOR UPDATE", connection, transaction))
        {
            head.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            size = await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?
                ?? throw new InvalidOperationException($"No tenant '{tenantId}'.");
        }

        for (var first = 0L; first < size; first += 5000)
        {
            await ProjectRangeAsync(connection, transaction, tenantId, first, Math.Min(size, first + 5000) - 1, null, cancellationToken).ConfigureAwait(false);
        }

        await AdvanceAsync(connection, transaction, tenantId, size, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return (ulong)size;
    }

    public async Task<ProjectionStatus?> StatusAsync(string tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(connection, tenantId, TenantScope.Command(
            "SELECT h.size, COALESCE(p.projected_size, 0) FROM atp.tree_heads h LEFT JOIN atp.projections p ON p.tenant_id = h.tenant_id WHERE h.tenant_id = $1", tenantId));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? new ProjectionStatus((ulong)reader.GetInt64(1), (ulong)reader.GetInt64(0)) : null;
    }

    public async Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT atp.oldest_unprojected()", connection);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;
    }

    public async Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // Plans from the actual filter values: how selective a term is decides between the GIN index and the time order
        // (an auto-prepared statement would otherwise settle on one generic plan).
        await using (var scope = new NpgsqlCommand("SELECT set_config('atp.tenant_id', $1, true), set_config('plan_cache_mode', 'force_custom_plan', true)", connection, transaction))
        {
            scope.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            await scope.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var positions = new List<(long Occurred, long Index)>(query.Limit + 1);
        await using (var search = new NpgsqlCommand(null, connection, transaction))
        {
            search.CommandText = BuildSearch(query, search.Parameters);
            await using var reader = await search.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
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

        var entries = new Dictionary<long, LogEntry>(positions.Count);
        if (positions.Count > 0)
        {
            await using var read = new NpgsqlCommand(
                "SELECT idx, event_id, leaf, leaf_hash, received_at FROM atp.log_entries WHERE tenant_id = $1 AND idx = ANY($2)", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            read.Parameters.Add(new NpgsqlParameter { Value = positions.Select(p => p.Index).ToArray() });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                entries[reader.GetInt64(0)] = new LogEntry(
                    (ulong)reader.GetInt64(0), reader.GetGuid(1), (byte[])reader[2], new Hash((byte[])reader[3]), new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var hits = positions.Select(p => new QueryHit(
            entries.TryGetValue(p.Index, out var entry) ? entry : throw new InvalidOperationException($"The read model names entry {p.Index} of tenant {query.TenantId}, which the log does not have."),
            new QueryPosition(p.Occurred, (ulong)p.Index))).ToList();
        return new QueryPage(hits, hasMore);
    }

    private static string BuildSearch(EventQuery query, NpgsqlParameterCollection parameters)
    {
        string Add(object value)
        {
            parameters.Add(new NpgsqlParameter { Value = value });
            return "$" + parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var sql = new StringBuilder($"SELECT e.occurred_at, e.idx FROM atp.event_index e WHERE e.tenant_id = {Add(query.TenantId)}");
        sql.Append($" AND e.idx < {Add((long)Math.Min(query.SnapshotSize, long.MaxValue))}");
        if (query.From is { } from)
        {
            sql.Append($" AND e.occurred_at >= {Add(from.UtcTicks)}");
        }

        if (query.To is { } to)
        {
            sql.Append($" AND e.occurred_at < {Add(to.UtcTicks)}");
        }

        if (query.ActorType is { } actorType)
        {
            sql.Append($" AND e.actor_type = {Add(actorType)}");
        }

        if (query.Outcome is { } outcome)
        {
            sql.Append($" AND e.outcome = {Add(outcome)}");
        }

        // A text filter without a single word (q=!) matches nothing, as on the embedded engine, whether or not other
        // filters made a tsquery.
        var terms = SearchTerms.Query(query, out var matchesNothing);
        if (matchesNothing)
        {
            sql.Append(" AND false");
        }
        else if (terms is not null)
        {
            sql.Append($" AND e.terms @@ {Add(terms)}::tsquery");
        }

        if (query.After is { } after)
        {
            sql.Append(query.Ascending ? " AND (e.occurred_at, e.idx) > (" : " AND (e.occurred_at, e.idx) < (");
            sql.Append($"{Add(after.OccurredAtTicks)}, {Add((long)after.Index)})");
        }

        sql.Append(query.Ascending ? " ORDER BY e.occurred_at, e.idx" : " ORDER BY e.occurred_at DESC, e.idx DESC");
        sql.Append($" LIMIT {Add(query.Limit + 1)}");
        return sql.ToString();
    }

    // Indexes the entries first..last: from this node's recent leaves when it committed them all, else read from the log.
    private static async Task<int> ProjectRangeAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, long first, long last, byte[][]? leaves, CancellationToken cancellationToken)
    {
        var capacity = (int)Math.Min(last - first + 1, 1 << 16);
        var indexes = new List<long>(capacity);
        var occurredAt = new List<long>(capacity);
        var actorTypes = new List<string>(capacity);
        var outcomes = new List<string>(capacity);
        var terms = new List<string>(capacity);
        void Add(long index, byte[] leaf)
        {
            var fields = LeafFields.Read(leaf);
            indexes.Add(index);
            occurredAt.Add(fields.OccurredAt);
            actorTypes.Add(fields.ActorType);
            outcomes.Add(fields.Outcome);
            terms.Add(SearchTerms.Of(fields));
        }

        if (leaves is not null)
        {
            for (var i = 0; i < leaves.Length; i++)
            {
                Add(first + i, leaves[i]);
            }
        }
        else
        {
            await using var read = new NpgsqlCommand("SELECT idx, leaf FROM atp.log_entries WHERE tenant_id = $1 AND idx BETWEEN $2 AND $3 ORDER BY idx", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            read.Parameters.Add(new NpgsqlParameter { Value = first });
            read.Parameters.Add(new NpgsqlParameter { Value = last });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                Add(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1));
            }
        }

        if (indexes.Count == 0)
        {
            return 0;
        }

        // One statement for the whole range. The inbox: entries below the tenant's projected size are already indexed
        // (one projector per tenant at a time, under its advisory lock), so a redelivered outbox row adds nothing.
        await using var index = new NpgsqlCommand(
            $"""
            INSERT INTO atp.event_index (tenant_id, idx, occurred_at, actor_type, outcome, terms)
            SELECT $1, u.idx, u.occurred_at, u.actor_type, u.outcome, array_to_tsvector(string_to_array(u.terms, chr({(int)SearchTerms.LexemeSeparator})))
            FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[]) AS u(idx, occurred_at, actor_type, outcome, terms)
            WHERE u.idx >= COALESCE((SELECT p.projected_size FROM atp.projections p WHERE p.tenant_id = $1), 0)
            """, connection, transaction);
        index.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        index.Parameters.Add(new NpgsqlParameter { Value = indexes });
        index.Parameters.Add(new NpgsqlParameter { Value = occurredAt });
        index.Parameters.Add(new NpgsqlParameter { Value = actorTypes });
        index.Parameters.Add(new NpgsqlParameter { Value = outcomes });
        index.Parameters.Add(new NpgsqlParameter { Value = terms });
        return await index.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task AdvanceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, long size, CancellationToken cancellationToken)
    {
        await using var advance = new NpgsqlCommand(
            """
            INSERT INTO atp.projections (tenant_id, projected_size) VALUES ($1, $2)
            ON CONFLICT (tenant_id) DO UPDATE SET projected_size = GREATEST(atp.projections.projected_size, excluded.projected_size)
            """, connection, transaction);
        advance.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        advance.Parameters.Add(new NpgsqlParameter { Value = size });
        await advance.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task SetTenantAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, CancellationToken cancellationToken)
    {
        await using var set = new NpgsqlCommand(TenantScope.SetTenantSql, connection, transaction);
        set.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
