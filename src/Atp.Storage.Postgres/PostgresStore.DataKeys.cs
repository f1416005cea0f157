using Atp.Core.Classification;

namespace Atp.Storage.Postgres;

/// <summary>Wrapped data keys of classified fields (docs/classification.md), under row-level security like every tenant table.</summary>
public sealed partial class PostgresStore : IDataKeyStore
{
    public async Task<byte[]?> FindDataKeyAsync(string tenantId, string keyId, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync(
            tenantId, "SELECT wrapped FROM atp.data_keys WHERE tenant_id = $1 AND key_id = $2", [tenantId, keyId], reader => (byte[])reader[0], cancellationToken).ConfigureAwait(false);
        return rows.Count == 1 ? rows[0] : null;
    }

    // The deleted row stays in the table's heap until VACUUM reclaims it and in WAL segments until they are recycled;
    // neither is reachable through SQL or pg_dump, and the application role may not VACUUM (docs/classification.md).
    public Task<bool> ScrubDestroyedKeysAsync(CancellationToken cancellationToken) => Task.FromResult(false);
}
