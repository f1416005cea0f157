using Atp.Core.Erasure;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>Erasure requests awaiting approval (docs/classification.md, "Erasure"): every statement runs as the tenant, under row-level security.</summary>
public sealed partial class PostgresStore : IErasureRequestStore
{
    private const string ErasureRequestColumns =
        "request_id, subject, subject_key_id, reason, requested_by, created_at, expires_at, state, closed_by, closed_at, close_reason, tombstone_index";

    // Not serialised with another node's insert: two requests racing at the limit may both pass; the limit bounds work, it is no quota.
    public async Task<bool> CreateErasureRequestAsync(ErasureApprovalRequest request, int maxPending, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return await ExecuteAsync(
            request.TenantId,
            $"""
            INSERT INTO atp.erasure_requests (tenant_id, {ErasureRequestColumns})
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, NULL
            WHERE (SELECT count(*) FROM atp.erasure_requests WHERE tenant_id = $1 AND state = 'pending' AND expires_at > $7) < $10
            """,
            [request.TenantId, request.Id, request.Subject, request.SubjectKeyId, request.Reason, request.RequestedBy, request.CreatedAt.UtcTicks, request.ExpiresAt.UtcTicks, request.State, (long)maxPending],
            cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<ErasureApprovalRequest?> GetErasureRequestAsync(string tenantId, string requestId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId,
            $"SELECT {ErasureRequestColumns} FROM atp.erasure_requests WHERE tenant_id = $1 AND request_id = $2",
            [tenantId, requestId],
            reader => ReadErasureRequest(tenantId, reader),
            cancellationToken).ConfigureAwait(false))
        .SingleOrDefault();

    public Task<IReadOnlyList<ErasureApprovalRequest>> ListErasureRequestsAsync(string tenantId, string? state, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            tenantId,
            $"SELECT {ErasureRequestColumns} FROM atp.erasure_requests WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2) ORDER BY created_at DESC, request_id DESC LIMIT $3",
            [tenantId, state, (long)limit],
            reader => ReadErasureRequest(tenantId, reader),
            cancellationToken);

    public async Task<bool> CloseErasureRequestAsync(
        string tenantId, string requestId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId,
            """
            UPDATE atp.erasure_requests SET state = $3, subject = NULL, closed_by = $4, closed_at = $5, close_reason = $6
            WHERE tenant_id = $1 AND request_id = $2 AND state = 'pending'
            """,
            [tenantId, requestId, state, closedBy, closedAt.UtcTicks, reason],
            cancellationToken).ConfigureAwait(false) == 1;

    public async Task<bool> RecordErasureOutcomeAsync(string tenantId, string requestId, ulong? tombstoneIndex, string? failure, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId,
            """
            UPDATE atp.erasure_requests SET tombstone_index = $3, state = CASE WHEN $3::bigint IS NULL THEN 'failed' ELSE state END,
                close_reason = CASE WHEN $3::bigint IS NULL THEN $4 ELSE close_reason END
            WHERE tenant_id = $1 AND request_id = $2 AND state = 'approved' AND tombstone_index IS NULL
            """,
            [tenantId, requestId, tombstoneIndex is { } index ? (long)index : null, failure],
            cancellationToken).ConfigureAwait(false) == 1;

    private static ErasureApprovalRequest ReadErasureRequest(string tenantId, NpgsqlDataReader reader) =>
        new(reader.GetString(0), tenantId, NullableString(reader, 1), reader.GetString(2), reader.GetString(3), reader.GetString(4), Ticks(reader, 5)!.Value, Ticks(reader, 6)!.Value)
        {
            State = reader.GetString(7),
            ClosedBy = NullableString(reader, 8),
            ClosedAt = Ticks(reader, 9),
            CloseReason = NullableString(reader, 10),
            TombstoneIndex = reader.IsDBNull(11) ? null : (ulong)reader.GetInt64(11),
        };
}
