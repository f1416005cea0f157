using Atp.Core.Erasure;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>Erasure requests awaiting approval (docs/classification.md, "Erasure"): every statement is keyed by the tenant.</summary>
public sealed partial class SqliteStore : IErasureRequestStore
{
    private const string ErasureRequestColumns =
        "id, subject, subject_key_id, reason, requested_by, created_at, expires_at, state, closed_by, closed_at, close_reason, tombstone_index";

    public async Task<bool> CreateErasureRequestAsync(ErasureApprovalRequest request, int maxPending, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();

        // One statement on the one writer: the count and the insert cannot interleave with another request's.
        command.CommandText = $"""
            INSERT INTO erasure_requests (tenant_id, {ErasureRequestColumns})
            SELECT $tenant, $id, $subject, $keyId, $reason, $by, $created, $expires, $state, NULL, NULL, NULL, NULL
            WHERE (SELECT COUNT(*) FROM erasure_requests WHERE tenant_id = $tenant AND state = 'pending' AND expires_at > $created) < $max
            """;
        command.Parameters.AddWithValue("$tenant", request.TenantId);
        command.Parameters.AddWithValue("$id", request.Id);
        command.Parameters.AddWithValue("$subject", (object?)request.Subject ?? DBNull.Value);
        command.Parameters.AddWithValue("$keyId", request.SubjectKeyId);
        command.Parameters.AddWithValue("$reason", request.Reason);
        command.Parameters.AddWithValue("$by", request.RequestedBy);
        command.Parameters.AddWithValue("$created", request.CreatedAt.UtcTicks);
        command.Parameters.AddWithValue("$expires", request.ExpiresAt.UtcTicks);
        command.Parameters.AddWithValue("$state", request.State);
        command.Parameters.AddWithValue("$max", maxPending);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<ErasureApprovalRequest?> GetErasureRequestAsync(string tenantId, string requestId, CancellationToken cancellationToken) =>
        (await QueryErasureRequestsAsync(tenantId, requestId, null, 1, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<ErasureApprovalRequest>> ListErasureRequestsAsync(string tenantId, string? state, int limit, CancellationToken cancellationToken) =>
        QueryErasureRequestsAsync(tenantId, null, state, limit, cancellationToken);

    public async Task<bool> CloseErasureRequestAsync(
        string tenantId, string requestId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = """
            UPDATE erasure_requests SET state = $state, subject = NULL, closed_by = $by, closed_at = $at, close_reason = $reason
            WHERE tenant_id = $tenant AND id = $id AND state = 'pending'
            """;
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", requestId);
        command.Parameters.AddWithValue("$state", state);
        command.Parameters.AddWithValue("$by", (object?)closedBy ?? DBNull.Value);
        command.Parameters.AddWithValue("$at", closedAt.UtcTicks);
        command.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<bool> RecordErasureOutcomeAsync(string tenantId, string requestId, ulong? tombstoneIndex, string? failure, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = """
            UPDATE erasure_requests SET tombstone_index = $index, state = CASE WHEN $index IS NULL THEN 'failed' ELSE state END,
                close_reason = CASE WHEN $index IS NULL THEN $failure ELSE close_reason END
            WHERE tenant_id = $tenant AND id = $id AND state = 'approved' AND tombstone_index IS NULL
            """;
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", requestId);
        command.Parameters.AddWithValue("$index", tombstoneIndex is { } index ? (long)index : DBNull.Value);
        command.Parameters.AddWithValue("$failure", (object?)failure ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<IReadOnlyList<ErasureApprovalRequest>> QueryErasureRequestsAsync(
        string tenantId, string? requestId, string? state, int limit, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {ErasureRequestColumns} FROM erasure_requests
            WHERE tenant_id = $tenant AND ($id IS NULL OR id = $id) AND ($state IS NULL OR state = $state)
            ORDER BY created_at DESC, id DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", (object?)requestId ?? DBNull.Value);
        command.Parameters.AddWithValue("$state", (object?)state ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var requests = new List<ErasureApprovalRequest>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            requests.Add(ReadErasureRequest(tenantId, reader));
        }

        return requests;
    }

    private static ErasureApprovalRequest ReadErasureRequest(string tenantId, SqliteDataReader reader) =>
        new(reader.GetString(0), tenantId, NullableString(reader, 1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
            new DateTimeOffset(reader.GetInt64(5), TimeSpan.Zero), new DateTimeOffset(reader.GetInt64(6), TimeSpan.Zero))
        {
            State = reader.GetString(7),
            ClosedBy = NullableString(reader, 8),
            ClosedAt = reader.IsDBNull(9) ? null : new DateTimeOffset(reader.GetInt64(9), TimeSpan.Zero),
            CloseReason = NullableString(reader, 10),
            TombstoneIndex = reader.IsDBNull(11) ? null : (ulong)reader.GetInt64(11),
        };
}
