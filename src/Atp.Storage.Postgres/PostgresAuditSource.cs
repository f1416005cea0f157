using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// The scale-out engine's stored logs, read as they are for the self-audit, in read-only transactions
/// (<c>default_transaction_read_only</c>) as the role of the connection string given. Listing the tenants reads every
/// tenant's tree head, which row-level security allows only to the schema owner (or a BYPASSRLS role); every other read
/// is scoped to one tenant, as the store's own are (<see cref="TenantScope"/>).
/// </summary>
public sealed class PostgresAuditSource : ILogAuditSource
{
    private readonly NpgsqlDataSource _dataSource;

    private PostgresAuditSource(NpgsqlDataSource dataSource) => _dataSource = dataSource;

    /// <summary>Connects with <paramref name="connectionString"/>; nothing it runs can write.</summary>
    public static PostgresAuditSource Open(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Options = "-c default_transaction_read_only=on" };
        return new PostgresAuditSource(NpgsqlDataSource.Create(builder.ConnectionString));
    }

    public async Task<IReadOnlyList<string>> ListTenantsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var tenants = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT tenant_id FROM atp.tree_heads ORDER BY tenant_id", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                tenants.Add(reader.GetString(0));
            }
        }

        if (tenants.Count == 0 && !await SeesAllRowsAsync(connection, cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException(
                "The role sees no tenant under row-level security, so it cannot audit the store. Connect as the schema owner (or a read-only role with BYPASSRLS).");
        }

        return tenants;
    }

    public async Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken)
    {
        TreeHead? head = null;
        await ReadAsync(tenantId, "SELECT size, root FROM atp.tree_heads WHERE tenant_id = $1", [tenantId], reader =>
        {
            var root = (byte[])reader[1];
            head = new TreeHead((ulong)reader.GetInt64(0), root.Length == Hash.Size ? new Hash(root) : default);
        }, cancellationToken).ConfigureAwait(false);
        return head;
    }

    public async Task<IReadOnlyList<StoredCheckpoint>> ListCheckpointsAsync(string tenantId, CancellationToken cancellationToken)
    {
        var checkpoints = new List<StoredCheckpoint>();
        await ReadAsync(tenantId, "SELECT size, note, created_at FROM atp.checkpoints WHERE tenant_id = $1 ORDER BY size", [tenantId], reader =>
            checkpoints.Add(new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero))),
            cancellationToken).ConfigureAwait(false);
        return checkpoints;
    }

    public Task ScanAsync(string tenantId, ulong fromIndex, ulong toIndex, StoredRowVisitor visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (toIndex <= fromIndex || fromIndex > long.MaxValue)
        {
            return Task.CompletedTask;
        }

        return ReadAsync(
            tenantId,
            "SELECT idx, CASE WHEN octet_length(leaf) = 0 AND purged_by IS NULL THEN '\\x00'::bytea ELSE leaf END, leaf_hash, nodes FROM atp.log_entries WHERE tenant_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            [tenantId, (long)fromIndex, (long)Math.Min(toIndex, long.MaxValue)],
            reader => visit(
                (ulong)reader.GetInt64(0),
                reader.GetFieldValue<byte[]>(1),
                reader.GetFieldValue<byte[]>(2),
                reader.IsDBNull(3) ? [] : reader.GetFieldValue<byte[]>(3)),
            cancellationToken);
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private async Task ReadAsync(string tenantId, string sql, object?[] values, Action<NpgsqlDataReader> row, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(connection, tenantId, TenantScope.Command(sql, values));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            row(reader);
        }
    }

    private static async Task<bool> SeesAllRowsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'MEMBER')
            FROM pg_roles r, pg_class c
            WHERE r.rolname = current_user AND c.oid = 'atp.tree_heads'::regclass
            """, connection);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }
}
