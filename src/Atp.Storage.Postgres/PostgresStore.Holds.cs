using Atp.Core.Holds;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>Legal holds (docs/api.md, "Legal holds"): every statement runs as the tenant, under row-level security.</summary>
public sealed partial class PostgresStore : ILegalHoldStore
{
    private const string HoldColumns = "hold_id, scope, reason, issuer, created_at, released_at, released_by";

    public async Task CreateHoldAsync(LegalHold hold, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hold);
        await ExecuteAsync(
            hold.TenantId,
            $"INSERT INTO atp.legal_holds (tenant_id, {HoldColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [hold.TenantId, hold.Id, HoldScopeJson.ToJson(hold.Scope), hold.Reason, hold.Issuer, hold.CreatedAt.UtcTicks, hold.ReleasedAt?.UtcTicks, hold.ReleasedBy],
            cancellationToken).ConfigureAwait(false);
    }

    public async Task<LegalHold?> GetHoldAsync(string tenantId, string holdId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, $"SELECT {HoldColumns} FROM atp.legal_holds WHERE tenant_id = $1 AND hold_id = $2", [tenantId, holdId], reader => ReadHold(tenantId, reader), cancellationToken).ConfigureAwait(false))
        .SingleOrDefault();

    public Task<IReadOnlyList<LegalHold>> ListHoldsAsync(string tenantId, bool includeReleased, CancellationToken cancellationToken) =>
        QueryAsync(
            tenantId,
            $"SELECT {HoldColumns} FROM atp.legal_holds WHERE tenant_id = $1 AND ($2 OR released_at IS NULL) ORDER BY created_at DESC, hold_id DESC",
            [tenantId, includeReleased],
            reader => ReadHold(tenantId, reader),
            cancellationToken);

    // Only an active hold is released, so of two releases exactly one reports true and the first release's time and person stay.
    public async Task<bool> ReleaseHoldAsync(string tenantId, string holdId, string releasedBy, DateTimeOffset releasedAt, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId,
            "UPDATE atp.legal_holds SET released_at = $3, released_by = $4 WHERE tenant_id = $1 AND hold_id = $2 AND released_at IS NULL",
            [tenantId, holdId, releasedAt.UtcTicks, releasedBy],
            cancellationToken).ConfigureAwait(false) == 1;

    private static LegalHold ReadHold(string tenantId, NpgsqlDataReader reader) =>
        new(reader.GetString(0), tenantId, HoldScopeJson.FromJson(reader.GetString(1)), reader.GetString(2), reader.GetString(3), Ticks(reader, 4)!.Value, Ticks(reader, 5), NullableString(reader, 6));
}
