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
    // it is copied back and truncated; readers holding an old snapshot keep the checkpoint busy, so it is retried.
    public async Task<bool> ScrubDestroyedKeysAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (await TruncateWalAsync(_writeConnection, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }

        return false;
    }
}
