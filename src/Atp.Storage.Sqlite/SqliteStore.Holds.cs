using Atp.Core.Holds;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>Legal holds (docs/api.md, "Legal holds"): every statement is keyed by the tenant.</summary>
public sealed partial class SqliteStore : ILegalHoldStore
{
    private const string HoldColumns = "id, scope, reason, issuer, created_at, released_at, released_by";

    public async Task CreateHoldAsync(LegalHold hold, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hold);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO legal_holds (tenant_id, {HoldColumns}) VALUES ($tenant, $id, $scope, $reason, $issuer, $created, $releasedAt, $releasedBy)";
        command.Parameters.AddWithValue("$tenant", hold.TenantId);
        command.Parameters.AddWithValue("$id", hold.Id);
        command.Parameters.AddWithValue("$scope", HoldScopeJson.ToJson(hold.Scope));
        command.Parameters.AddWithValue("$reason", hold.Reason);
        command.Parameters.AddWithValue("$issuer", hold.Issuer);
        command.Parameters.AddWithValue("$created", hold.CreatedAt.UtcTicks);
        command.Parameters.AddWithValue("$releasedAt", hold.ReleasedAt is { } releasedAt ? releasedAt.UtcTicks : DBNull.Value);
        command.Parameters.AddWithValue("$releasedBy", (object?)hold.ReleasedBy ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<LegalHold?> GetHoldAsync(string tenantId, string holdId, CancellationToken cancellationToken) =>
        (await QueryHoldsAsync(tenantId, holdId, includeReleased: true, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<LegalHold>> ListHoldsAsync(string tenantId, bool includeReleased, CancellationToken cancellationToken) =>
        QueryHoldsAsync(tenantId, null, includeReleased, cancellationToken);

    public async Task<bool> ReleaseHoldAsync(string tenantId, string holdId, string releasedBy, DateTimeOffset releasedAt, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();

        // Only an active hold is released, so of two releases exactly one reports true and the first release's time and person stay.
        command.CommandText = "UPDATE legal_holds SET released_at = $at, released_by = $by WHERE tenant_id = $tenant AND id = $id AND released_at IS NULL";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", holdId);
        command.Parameters.AddWithValue("$by", releasedBy);
        command.Parameters.AddWithValue("$at", releasedAt.UtcTicks);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<IReadOnlyList<LegalHold>> QueryHoldsAsync(string tenantId, string? holdId, bool includeReleased, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {HoldColumns} FROM legal_holds
            WHERE tenant_id = $tenant AND ($id IS NULL OR id = $id) AND ($all = 1 OR released_at IS NULL)
            ORDER BY created_at DESC, id DESC
            """;
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", (object?)holdId ?? DBNull.Value);
        command.Parameters.AddWithValue("$all", includeReleased ? 1 : 0);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var holds = new List<LegalHold>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            holds.Add(new LegalHold(
                reader.GetString(0), tenantId, HoldScopeJson.FromJson(reader.GetString(1)), reader.GetString(2), reader.GetString(3),
                new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero),
                reader.IsDBNull(5) ? null : new DateTimeOffset(reader.GetInt64(5), TimeSpan.Zero),
                NullableString(reader, 6)));
        }

        return holds;
    }
}
