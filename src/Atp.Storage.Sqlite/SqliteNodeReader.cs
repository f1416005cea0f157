using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>One tenant's Merkle nodes: level 0 from log_entries.leaf_hash, higher levels from merkle_nodes.</summary>
internal sealed class SqliteNodeReader(SqliteConnections connections, string tenantId) : IMerkleNodeReader
{
    public async ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken)
    {
        using var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction(deferred: true);
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids.Span[i];
            destination.Span[i] = ReadNode(connection, transaction, tenantId, id)
                ?? throw new InvalidOperationException($"Merkle node {id} of tenant '{tenantId}' is not stored: the tree has not grown past it.");
        }
    }

    internal static Hash? ReadNode(SqliteConnection connection, SqliteTransaction? transaction, string tenantId, NodeId id)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        if (id.Level == 0)
        {
            command.CommandText = "SELECT leaf_hash FROM log_entries WHERE tenant_id = $t AND idx = $i";
        }
        else
        {
            command.CommandText = "SELECT hash FROM merkle_nodes WHERE tenant_id = $t AND level = $v AND idx = $i";
            command.Parameters.AddWithValue("$v", id.Level);
        }

        command.Parameters.AddWithValue("$t", tenantId);
        command.Parameters.AddWithValue("$i", (long)id.Index);
        return command.ExecuteScalar() is byte[] bytes ? new Hash(bytes) : null;
    }
}
