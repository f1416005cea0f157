using Atp.Core.Storage;
using Atp.Integrity;
using Npgsql;

namespace Atp.Storage.Postgres;

public sealed partial class PostgresStore
{
    /// <summary>
    /// Seals the tenants' logs in one transaction, with one commit for all their checkpoints. Per tenant it is
    /// <see cref="SealAsync"/>: the tenant's sealer advisory lock is tried (a tenant another node is sealing is left to
    /// it), the committed head is read unless a checkpoint covers it, and the signer checks it while the lock is held.
    /// All the locks are held until the one commit, so no node signs a head of these tenants meanwhile; each tenant's
    /// statements run with the tenant set for them, under row-level security. One round trip reads all the heads and
    /// one stores all the notes.
    /// </summary>
    public async Task<int> SealManyAsync(
        IReadOnlyList<string> tenantIds, Func<string, TreeHead, CancellationToken, Task<string?>> sign, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenantIds);
        ArgumentNullException.ThrowIfNull(sign);
        if (tenantIds.Count == 0)
        {
            return 0;
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var heads = await LockUnsealedHeadsAsync(connection, transaction, tenantIds, cancellationToken).ConfigureAwait(false);
        await using var save = new NpgsqlBatch(connection, transaction);
        var inserts = new List<NpgsqlBatchCommand>(heads.Count);
        foreach (var (tenantId, head) in heads)
        {
            // The fork and rollback checks run per tenant in the signer; a refused head skips that tenant only.
            if (await sign(tenantId, head, cancellationToken).ConfigureAwait(false) is not { } note)
            {
                continue;
            }

            var insert = TenantScope.Command(
                "INSERT INTO atp.checkpoints (tenant_id, size, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                tenantId, (long)head.Size, note, createdAt.UtcTicks);
            save.BatchCommands.Add(TenantScope.SetTenant(tenantId));
            save.BatchCommands.Add(insert);
            inserts.Add(insert);
        }

        if (inserts.Count == 0)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }

        await save.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return inserts.Sum(i => i.RecordsAffected);
    }

    // Per tenant, as the tenant: try its sealer lock, then read its head if no checkpoint covers it. Only the heads of the
    // tenants whose lock this transaction now holds are returned.
    private static async Task<List<(string TenantId, TreeHead Head)>> LockUnsealedHeadsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<string> tenantIds, CancellationToken cancellationToken)
    {
        await using var read = new NpgsqlBatch(connection, transaction);
        foreach (var tenantId in tenantIds)
        {
            read.BatchCommands.Add(TenantScope.SetTenant(tenantId));
            read.BatchCommands.Add(TenantScope.Command($"SELECT pg_try_advisory_xact_lock({SealLock}, hashtext($1))", tenantId));
            read.BatchCommands.Add(TenantScope.Command(
                """
                SELECT h.size, h.root FROM atp.tree_heads h WHERE h.tenant_id = $1
                AND NOT EXISTS (SELECT 1 FROM atp.checkpoints c WHERE c.tenant_id = h.tenant_id AND c.size >= h.size)
                """,
                tenantId));
        }

        var heads = new List<(string, TreeHead)>(tenantIds.Count);
        await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < tenantIds.Count; i++)
        {
            // Each tenant's three results: the setting, the lock, the head.
            if (i > 0)
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            }

            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            var locked = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetBoolean(0);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (locked && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                heads.Add((tenantIds[i], new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]))));
            }
        }

        return heads;
    }
}
