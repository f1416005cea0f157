using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>The events about a data subject: the actor index and the targets table, merged.</summary>
internal sealed partial class SqliteReadModels
{
    // Each arm reads one index from the subject's key on: event_index_actor (tenant_num, actor_id, occurred_at, idx)
    // in order, event_targets' primary key (tenant_num, target_id, …) sorted across the subject's target types. UNION
    // lists an event that names the subject as actor and target, or as two targets, once: (occurred_at, idx) is the
    // event. The snapshot bound is written +idx so that neither arm is steered onto a tenant-wide primary key.
    internal const string SubjectSql = """
        SELECT occurred_at, idx FROM event_index
        WHERE tenant_num = $num AND actor_id = $subject AND +idx < $snapshot AND (occurred_at, idx) > ($afterAt, $afterIdx)
        UNION
        SELECT occurred_at, idx FROM event_targets
        WHERE tenant_num = $num AND target_id = $subject AND +idx < $snapshot AND (occurred_at, idx) > ($afterAt, $afterIdx)
        ORDER BY 1, 2
        LIMIT $limit
        """;

    public Task<SubjectPage> ListSubjectEventsAsync(SubjectQuery query, CancellationToken cancellationToken) =>
        ReadIntactAsync(() => ListSubjectEventsOnceAsync(query, cancellationToken));

    private async Task<SubjectPage> ListSubjectEventsOnceAsync(SubjectQuery query, CancellationToken cancellationToken)
    {
        using var connection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(connection, null, query.TenantId) is not { } num)
        {
            return new SubjectPage([], false);
        }

        var positions = new List<QueryPosition>(query.Limit + 1);
        using (var readModel = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false))
        using (var command = readModel.CreateCommand())
        {
            command.CommandText = SubjectSql;
            command.Parameters.AddWithValue("$num", num);
            command.Parameters.AddWithValue("$subject", query.Subject);
            command.Parameters.AddWithValue("$snapshot", (long)Math.Min(query.SnapshotSize, LogRowId.MaxIndex + 1));

            // Before every event when there is no cursor: ticks and indexes are never negative.
            command.Parameters.AddWithValue("$afterAt", query.After?.OccurredAtTicks ?? long.MinValue);
            command.Parameters.AddWithValue("$afterIdx", query.After is { } after ? (long)after.Index : -1L);
            command.Parameters.AddWithValue("$limit", query.Limit + 1);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
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

        var hits = new List<SubjectHit>(positions.Count);
        using var entry = connection.CreateCommand();
        entry.CommandText = "SELECT event_id, leaf, leaf_hash, received_at FROM log_entries WHERE id = $id AND purged_by IS NULL";
        var id = entry.Parameters.Add("$id", SqliteType.Integer);
        foreach (var position in positions)
        {
            id.Value = LogRowId.Of(num, position.Index);
            using var reader = await entry.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Retention may purge an entry's content before the projector drops its rows; the page goes on.
                hits.Add(new SubjectHit(position, null));
                continue;
            }

            var logEntry = new LogEntry(
                position.Index, new Guid((byte[])reader[0], bigEndian: true), (byte[])reader[1], new Hash((byte[])reader[2]), new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero));

            // A damaged read model must not put another subject's event into this subject's answer.
            if (!IsAbout(logEntry, query.Subject, position.OccurredAtTicks))
            {
                ReportDamage($"the read models list entry {position.Index} of tenant {query.TenantId} for a subject the entry does not name");
                throw new ProjectionRebuildingException();
            }

            hits.Add(new SubjectHit(position, logEntry));
        }

        return new SubjectPage(hits, hasMore);
    }

    private static bool IsAbout(LogEntry entry, string subject, long occurredAt)
    {
        if (ComparableFields(entry) is not { } fields)
        {
            return true;
        }

        return fields.OccurredAt == occurredAt
            && (string.Equals(fields.ActorId, subject, StringComparison.Ordinal) || fields.Targets.Any(t => string.Equals(t.Id, subject, StringComparison.Ordinal)));
    }
}
