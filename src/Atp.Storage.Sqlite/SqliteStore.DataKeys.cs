using Atp.Core.Classification;

namespace Atp.Storage.Sqlite;

/// <summary>Wrapped data keys of classified fields (docs/classification.md); written by the sequencer with the append that needs them.</summary>
public sealed partial class SqliteStore : IDataKeyStore
{
    public async Task<byte[]?> FindDataKeyAsync(string tenantId, string keyId, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT wrapped FROM data_keys WHERE tenant_id = $tenant AND key_id = $key";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$key", keyId);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
    }
}
