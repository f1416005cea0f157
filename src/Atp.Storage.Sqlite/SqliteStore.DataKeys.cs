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

    // The deleted row is zeroed in its page (secure_delete), but the WAL still holds the frame that inserted it until
    // it is copied back and truncated. One attempt: the checkpoint already waits for readers on old snapshots (up to
    // the connection's busy timeout, appends waiting behind it as for the periodic truncation), and retrying after
    // that would only hold appends back longer.
    public Task<bool> ScrubDestroyedKeysAsync(CancellationToken cancellationToken) => TruncateWalAsync(_writeConnection, cancellationToken);
}
