using System.Text;
using Atp.Core.Query;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Atp.Integrity;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// The scale-out engine's read models. Any node's projector claims the outbox rows of one tenant that no other
/// projector holds (<c>atp.claim_outbox</c>: a per-tenant advisory lock and <c>FOR UPDATE SKIP LOCKED</c>), then
/// projects them as that tenant, under row-level security, in one transaction. Searches run as the tenant too.
/// </summary>
/// An entry that cannot be projected (its leaf, or a value PostgreSQL refuses) becomes a dead letter and the rest of the
/// range goes on, so no entry holds its tenant, or the tenants claimed after it, back.
internal sealed class PostgresReadModels(NpgsqlDataSource dataSource, RecentLeaves recent, TimeProvider clock)
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

        // The projected size names a prefix every entry of which was handled: rows that leave a gap after it (a row
        // redelivered out of order) are projected together with the gap, read from the log.
        long projectedSize;
        await using (var size = new NpgsqlCommand("SELECT COALESCE((SELECT projected_size FROM atp.projections WHERE tenant_id = $1), 0)", connection, transaction))
        {
            size.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            projectedSize = (long)(await size.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var sorted = rows.OrderBy(r => r.First).ToList();
        var contiguous = sorted[0].First <= projectedSize && sorted.Zip(sorted.Skip(1)).All(p => p.Second.First <= p.First.Last + 1);
        var first = contiguous ? sorted[0].First : Math.Min(sorted[0].First, projectedSize);
        var last = sorted.Max(r => r.Last);
        var leaves = contiguous ? recent.Take(tenantId, first, last) : null;
        var projected = await ProjectRangeAsync(connection, transaction, tenantId, first, last, leaves, clock.GetUtcNow().UtcTicks, cancellationToken).ConfigureAwait(false);
        await using (var done = new NpgsqlCommand("DELETE FROM atp.outbox WHERE tenant_id = $1 AND id = ANY($2)", connection, transaction))
        {
            done.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            done.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => r.Id).ToArray() });
            await done.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await AdvanceAsync(connection, transaction, tenantId, last + 1, cancellationToken).ConfigureAwait(false);
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
            foreach (var table in new[] { "event_index", "outbox", "projections", "dead_letters" })
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
            await ProjectRangeAsync(connection, transaction, tenantId, first, Math.Min(size, first + 5000) - 1, null, clock.GetUtcNow().UtcTicks, cancellationToken).ConfigureAwait(false);
        }

        await AdvanceAsync(connection, transaction, tenantId, size, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return (ulong)size;
    }

    public async Task<ProjectionStatus?> StatusAsync(string tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(connection, tenantId, TenantScope.Command(
            """
            SELECT h.size, COALESCE(p.projected_size, 0), (SELECT count(*) FROM atp.dead_letters d WHERE d.tenant_id = h.tenant_id)
            FROM atp.tree_heads h LEFT JOIN atp.projections p ON p.tenant_id = h.tenant_id WHERE h.tenant_id = $1
            """, tenantId));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new ProjectionStatus((ulong)reader.GetInt64(1), (ulong)reader.GetInt64(0)) { DeadLetters = reader.GetInt64(2) }
            : null;
    }

    public async Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string tenantId, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var select = TenantScope.Command("SELECT idx, error, first_seen, last_seen, attempts FROM atp.dead_letters WHERE tenant_id = $1 ORDER BY idx LIMIT $2", tenantId, limit);
        await using var batch = TenantScope.Batch(connection, tenantId, select);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var letters = new List<DeadLetter>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            letters.Add(new DeadLetter(
                tenantId, (ulong)reader.GetInt64(0), reader.GetString(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero),
                new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero), reader.GetInt32(4)));
        }

        return letters;
    }

    public async Task<long> CountDeadLettersAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT atp.count_dead_letters()", connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<long> CountOutboxBacklogAsync(int maxRows, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT atp.outbox_backlog($1)", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxRows });
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<int> RetryDeadLettersAsync(string tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await SetTenantAsync(connection, transaction, tenantId, cancellationToken).ConfigureAwait(false);
        await using (var lockTenant = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({ProjectorLock}, hashtext($1))", connection, transaction))
        {
            lockTenant.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            await lockTenant.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var leaves = new List<(long Index, byte[] Leaf)>();
        await using (var read = new NpgsqlCommand(
            "SELECT e.idx, e.leaf FROM atp.dead_letters d JOIN atp.log_entries e ON e.tenant_id = d.tenant_id AND e.idx = d.idx WHERE d.tenant_id = $1 ORDER BY d.idx",
            connection, transaction))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                leaves.Add((reader.GetInt64(0), reader.GetFieldValue<byte[]>(1)));
            }
        }

        var rows = new IndexRows(leaves.Count);
        var failed = new List<(long Index, string Error)>();
        foreach (var (index, leaf) in leaves)
        {
            rows.TryAdd(index, leaf, failed);
        }

        // Below the projected prefix on purpose: these entries were handled (set aside), and are indexed now.
        var projected = await InsertRowsAsync(connection, transaction, tenantId, rows, failed, belowPrefix: true, cancellationToken).ConfigureAwait(false);
        await using (var release = new NpgsqlCommand("DELETE FROM atp.dead_letters WHERE tenant_id = $1 AND idx = ANY($2)", connection, transaction))
        {
            release.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            release.Parameters.Add(new NpgsqlParameter { Value = rows.Indexes.ToArray() });
            await release.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await RecordDeadLettersAsync(connection, transaction, tenantId, failed, clock.GetUtcNow().UtcTicks, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return projected;
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
        var purgedHits = new HashSet<long>();
        if (positions.Count > 0)
        {
            await using var read = new NpgsqlCommand(
                "SELECT idx, event_id, leaf, leaf_hash, received_at, purged_by FROM atp.log_entries WHERE tenant_id = $1 AND idx = ANY($2)", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            read.Parameters.Add(new NpgsqlParameter { Value = positions.Select(p => p.Index).ToArray() });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (!reader.IsDBNull(5))
                {
                    // Purged, its row not yet deleted by the projector (it deletes it when it projects the purge record).
                    purgedHits.Add(reader.GetInt64(0));
                    continue;
                }

                entries[reader.GetInt64(0)] = new LogEntry(
                    (ulong)reader.GetInt64(0), reader.GetGuid(1), (byte[])reader[2], new Hash((byte[])reader[3]), new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var hits = positions.Where(p => !purgedHits.Contains(p.Index)).Select(p => new QueryHit(
            entries.TryGetValue(p.Index, out var entry) ? entry : throw new InvalidOperationException($"The read model names entry {p.Index} of tenant {query.TenantId}, which the log does not have."),
            new QueryPosition(p.Occurred, (ulong)p.Index))).ToList();
        return new QueryPage(hits, hasMore);
    }

    public async Task<SubjectPage> ListSubjectEventsAsync(SubjectQuery query, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // A custom plan, as for search: a subject of few events takes the GIN index, not a walk of the time order.
        await using (var scope = new NpgsqlCommand("SELECT set_config('atp.tenant_id', $1, true), set_config('plan_cache_mode', 'force_custom_plan', true)", connection, transaction))
        {
            scope.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            await scope.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // One GIN lookup of the two lexemes (SearchTerms): an event is one row of event_index however often it names
        // the subject, so each is listed once.
        var positions = new List<QueryPosition>(query.Limit + 1);
        await using (var list = new NpgsqlCommand(
            """
            SELECT e.occurred_at, e.idx FROM atp.event_index e
            WHERE e.tenant_id = $1 AND e.idx < $2 AND e.terms @@ $3::tsquery AND (e.occurred_at, e.idx) > ($4, $5)
            ORDER BY e.occurred_at, e.idx
            LIMIT $6
            """,
            connection,
            transaction))
        {
            list.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            list.Parameters.Add(new NpgsqlParameter { Value = (long)Math.Min(query.SnapshotSize, long.MaxValue) });
            list.Parameters.Add(new NpgsqlParameter { Value = SearchTerms.Subject(query.Subject) });
            list.Parameters.Add(new NpgsqlParameter { Value = query.After?.OccurredAtTicks ?? long.MinValue });
            list.Parameters.Add(new NpgsqlParameter { Value = query.After is { } after ? (long)after.Index : -1L });
            list.Parameters.Add(new NpgsqlParameter { Value = query.Limit + 1 });
            await using var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                positions.Add(new QueryPosition(reader.GetInt64(0), (ulong)reader.GetInt64(1)));
            }
        }

        var hasMore = positions.Count > query.Limit;
        if (hasMore)
        {
            positions.RemoveAt(positions.Count - 1);
        }

        var entries = new Dictionary<ulong, LogEntry>(positions.Count);
        if (positions.Count > 0)
        {
            await using var read = new NpgsqlCommand(
                "SELECT idx, event_id, leaf, leaf_hash, received_at FROM atp.log_entries WHERE tenant_id = $1 AND idx = ANY($2) AND purged_by IS NULL", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = query.TenantId });
            read.Parameters.Add(new NpgsqlParameter { Value = positions.Select(p => (long)p.Index).ToArray() });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                entries[(ulong)reader.GetInt64(0)] = new LogEntry(
                    (ulong)reader.GetInt64(0), reader.GetGuid(1), (byte[])reader[2], new Hash((byte[])reader[3]), new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Retention may purge an entry's content before the projector drops its rows: that hit comes without its entry.
        return new SubjectPage(positions.Select(p => new SubjectHit(p, entries.GetValueOrDefault(p.Index))).ToList(), hasMore);
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
    // Entries that cannot be indexed become dead letters; the range is handled either way.
    private static async Task<int> ProjectRangeAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, long first, long last, byte[][]? leaves, long nowTicks, CancellationToken cancellationToken)
    {
        var rows = new IndexRows((int)Math.Min(last - first + 1, 1 << 16));
        var failed = new List<(long Index, string Error)>();
        if (leaves is not null)
        {
            for (var i = 0; i < leaves.Length; i++)
            {
                rows.TryAdd(first + i, leaves[i], failed);
            }
        }
        else
        {
            // A purged entry (retention) has nothing to index and is no dead letter.
            await using var read = new NpgsqlCommand("SELECT idx, leaf FROM atp.log_entries WHERE tenant_id = $1 AND idx BETWEEN $2 AND $3 AND purged_by IS NULL ORDER BY idx", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            read.Parameters.Add(new NpgsqlParameter { Value = first });
            read.Parameters.Add(new NpgsqlParameter { Value = last });
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.TryAdd(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), failed);
            }
        }

        var projected = await InsertRowsAsync(connection, transaction, tenantId, rows, failed, belowPrefix: false, cancellationToken).ConfigureAwait(false);
        await RecordDeadLettersAsync(connection, transaction, tenantId, failed, nowTicks, cancellationToken).ConfigureAwait(false);

        // Purge records in the range: the entries they purged (committed with them) leave the read models; on a
        // redelivery there is nothing left to delete.
        if (rows.MayHoldPurgeRecord)
        {
            await using var purged = new NpgsqlCommand(
                "DELETE FROM atp.event_index WHERE tenant_id = $1 AND idx IN (SELECT idx FROM atp.log_entries WHERE tenant_id = $1 AND purged_by BETWEEN $2 AND $3)", connection, transaction);
            purged.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            purged.Parameters.Add(new NpgsqlParameter { Value = first });
            purged.Parameters.Add(new NpgsqlParameter { Value = last });
            await purged.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return projected;
    }

    // One statement for all rows; should PostgreSQL refuse a value in it (a data exception), the rows go in one at a
    // time, each under a savepoint, and those it refuses join the failed ones.
    private static async Task<int> InsertRowsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, IndexRows rows, List<(long Index, string Error)> failed, bool belowPrefix, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        await transaction.SaveAsync("atp_rows", cancellationToken).ConfigureAwait(false);
        try
        {
            var inserted = await InsertAsync(connection, transaction, tenantId, rows, belowPrefix, cancellationToken).ConfigureAwait(false);
            await transaction.ReleaseAsync("atp_rows", cancellationToken).ConfigureAwait(false);
            return inserted;
        }
        catch (PostgresException e) when (IsValueRefused(e))
        {
            await transaction.RollbackAsync("atp_rows", cancellationToken).ConfigureAwait(false);
        }

        var total = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            var one = rows.Single(i);
            await transaction.SaveAsync("atp_row", cancellationToken).ConfigureAwait(false);
            try
            {
                total += await InsertAsync(connection, transaction, tenantId, one, belowPrefix, cancellationToken).ConfigureAwait(false);
                await transaction.ReleaseAsync("atp_row", cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (IsValueRefused(e))
            {
                await transaction.RollbackAsync("atp_row", cancellationToken).ConfigureAwait(false);
                // The SQLSTATE only: PostgreSQL's message text may quote the refused value.
                failed.Add((one.Indexes[0], $"PostgreSQL refused a value of the entry (SQLSTATE {e.SqlState})."));
            }
        }

        return total;
    }

    // Class 22 (data exception: bad encoding, U+0000, out of range) and 54 (a program limit: a tsvector too long).
    private static bool IsValueRefused(PostgresException e) => e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("54", StringComparison.Ordinal);

    private static async Task<int> InsertAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, IndexRows rows, bool belowPrefix, CancellationToken cancellationToken)
    {
        // The inbox: entries below the tenant's projected size are already indexed (one projector per tenant at a time,
        // under its advisory lock), so a redelivered outbox row adds nothing. A retried dead letter is the exception.
        var prefix = belowPrefix ? string.Empty : "WHERE u.idx >= COALESCE((SELECT p.projected_size FROM atp.projections p WHERE p.tenant_id = $1), 0)";
        await using var index = new NpgsqlCommand(
            $"""
            INSERT INTO atp.event_index (tenant_id, idx, occurred_at, actor_type, outcome, terms)
            SELECT $1, u.idx, u.occurred_at, u.actor_type, u.outcome, array_to_tsvector(string_to_array(u.terms, chr({(int)SearchTerms.LexemeSeparator})))
            FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[]) AS u(idx, occurred_at, actor_type, outcome, terms)
            {prefix}
            """, connection, transaction);
        index.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        index.Parameters.Add(new NpgsqlParameter { Value = rows.Indexes });
        index.Parameters.Add(new NpgsqlParameter { Value = rows.OccurredAt });
        index.Parameters.Add(new NpgsqlParameter { Value = rows.ActorTypes });
        index.Parameters.Add(new NpgsqlParameter { Value = rows.Outcomes });
        index.Parameters.Add(new NpgsqlParameter { Value = rows.Terms });
        return await index.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task RecordDeadLettersAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string tenantId, List<(long Index, string Error)> failed, long nowTicks, CancellationToken cancellationToken)
    {
        if (failed.Count == 0)
        {
            return;
        }

        await using var record = new NpgsqlCommand(
            """
            INSERT INTO atp.dead_letters (tenant_id, idx, error, first_seen, last_seen, attempts)
            SELECT $1, u.idx, u.error, $4, $4, 1 FROM unnest($2::bigint[], $3::text[]) AS u(idx, error)
            ON CONFLICT (tenant_id, idx) DO UPDATE SET error = excluded.error, last_seen = excluded.last_seen, attempts = atp.dead_letters.attempts + 1
            """, connection, transaction);
        record.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        record.Parameters.Add(new NpgsqlParameter { Value = failed.Select(f => f.Index).ToArray() });
        record.Parameters.Add(new NpgsqlParameter { Value = failed.Select(f => f.Error).ToArray() });
        record.Parameters.Add(new NpgsqlParameter { Value = nowTicks });
        await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The columns of event_index rows to insert, one list per column (sent as arrays).</summary>
    private sealed class IndexRows(int capacity)
    {
        public List<long> Indexes { get; } = new(capacity);

        public List<long> OccurredAt { get; } = new(capacity);

        public List<string> ActorTypes { get; } = new(capacity);

        public List<string> Outcomes { get; } = new(capacity);

        public List<string> Terms { get; } = new(capacity);

        public int Count => Indexes.Count;

        /// <summary>
        /// Whether an entry has the purge records' action: only then can the range have purged entries to drop, so a
        /// range without one costs no query (a client event with that action costs one query and deletes nothing).
        /// </summary>
        public bool MayHoldPurgeRecord { get; private set; }

        /// <summary>Adds the entry's row, or its failure when the leaf cannot be indexed.</summary>
        public void TryAdd(long index, byte[] leaf, List<(long Index, string Error)> failed)
        {
            LeafFields fields;
            try
            {
                fields = LeafFields.Read(leaf);
            }
            catch (Exception e) when (ProjectionErrors.IsEntryFailure(e))
            {
                failed.Add((index, ProjectionErrors.Describe(e)));
                return;
            }

            if (ProjectionErrors.RefuseUnstorable(fields) is { } refused)
            {
                failed.Add((index, refused));
                return;
            }

            MayHoldPurgeRecord |= fields.Action == RetentionPass.PurgeAction;
            Indexes.Add(index);
            OccurredAt.Add(fields.OccurredAt);
            ActorTypes.Add(fields.ActorType);
            Outcomes.Add(fields.Outcome);
            Terms.Add(SearchTerms.Of(fields));
        }

        public IndexRows Single(int i)
        {
            var one = new IndexRows(1);
            one.Indexes.Add(Indexes[i]);
            one.OccurredAt.Add(OccurredAt[i]);
            one.ActorTypes.Add(ActorTypes[i]);
            one.Outcomes.Add(Outcomes[i]);
            one.Terms.Add(Terms[i]);
            return one;
        }
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
