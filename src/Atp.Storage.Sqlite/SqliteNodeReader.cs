using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// One tenant's Merkle nodes. Level 0 is a row's leaf_hash; node (level L ≥ 1, index i) was completed by leaf
/// (i+1)·2^L − 1 and is stored in that row's nodes column at offset (L−1)·32.
/// </summary>
internal sealed class SqliteNodeReader(SqliteConnections connections, TenantNumbers numbers, string tenantId) : IMerkleNodeReader
{
    public async ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction(deferred: true);
        var tenantNumber = numbers.Find(connection, transaction, tenantId)
            ?? throw new InvalidOperationException($"Tenant '{tenantId}' has no log.");
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids.Span[i];
            destination.Span[i] = ReadNode(connection, transaction, tenantNumber, id)
                ?? throw new InvalidOperationException($"Merkle node {id} of tenant '{tenantId}' is not stored: the tree has not grown past it.");
        }
    }

    internal static Hash? ReadNode(SqliteConnection connection, SqliteTransaction? transaction, long tenantNumber, NodeId id)
    {
        var leafIndex = id.Level == 0 ? id.Index : ((id.Index + 1) << id.Level) - 1;
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = id.Level == 0
            ? "SELECT leaf_hash FROM log_entries WHERE id = $id"
            : "SELECT nodes FROM log_entries WHERE id = $id";
        command.Parameters.AddWithValue("$id", LogRowId.Of(tenantNumber, leafIndex));
        if (command.ExecuteScalar() is not byte[] bytes)
        {
            return null;
        }

        if (id.Level == 0)
        {
            return new Hash(bytes);
        }

        var offset = (id.Level - 1) * Hash.Size;
        return bytes.Length >= offset + Hash.Size ? new Hash(bytes.AsSpan(offset, Hash.Size)) : null;
    }
}
