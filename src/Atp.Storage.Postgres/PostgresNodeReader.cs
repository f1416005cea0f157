using Atp.Integrity;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// One tenant's Merkle nodes. Level 0 is a row's leaf_hash; node (level L ≥ 1, index i) was completed by leaf
/// (i+1)·2^L − 1 and is stored in that row's nodes column at offset (L−1)·32. All requested nodes come in one query.
/// </summary>
internal sealed class PostgresNodeReader(NpgsqlDataSource dataSource, string tenantId) : IMerkleNodeReader
{
    public async ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var found = await ReadAsync(connection, tenantId, ids, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < ids.Length; i++)
        {
            destination.Span[i] = found[i]
                ?? throw new InvalidOperationException($"Merkle node {ids.Span[i]} of tenant '{tenantId}' is not stored: the tree has not grown past it.");
        }
    }

    /// <summary>The nodes, null where not stored; on <paramref name="connection"/> (and its transaction, if any).</summary>
    internal static async Task<Hash?[]> ReadAsync(NpgsqlConnection connection, string tenantId, ReadOnlyMemory<NodeId> ids, CancellationToken cancellationToken)
    {
        var rows = new long[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            rows[i] = (long)LeafOf(ids.Span[i]);
        }

        var byRow = new Dictionary<long, (byte[] LeafHash, byte[]? Nodes)>();
        await using (var batch = TenantScope.Batch(
            connection, tenantId,
            TenantScope.Command("SELECT idx, leaf_hash, nodes FROM atp.log_entries WHERE tenant_id = $1 AND idx = ANY($2)", tenantId, rows)))
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                byRow[reader.GetInt64(0)] = ((byte[])reader[1], reader.IsDBNull(2) ? null : (byte[])reader[2]);
            }
        }

        var hashes = new Hash?[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids.Span[i];
            if (!byRow.TryGetValue(rows[i], out var row))
            {
                continue;
            }

            var offset = (id.Level - 1) * Hash.Size;
            hashes[i] = id.Level == 0 ? new Hash(row.LeafHash)
                : row.Nodes is { } nodes && nodes.Length >= offset + Hash.Size ? new Hash(nodes.AsSpan(offset, Hash.Size))
                : null;
        }

        return hashes;
    }

    private static ulong LeafOf(NodeId id) => id.Level == 0 ? id.Index : ((id.Index + 1) << id.Level) - 1;
}
