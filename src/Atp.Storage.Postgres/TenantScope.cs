using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// Runs statements as one tenant: a batch whose first statement sets <c>atp.tenant_id</c> for the transaction only
/// (<c>set_config(…, true)</c>). A batch without an explicit transaction is one implicit transaction, so the setting
/// covers exactly the statements that follow it and is gone when the connection returns to the pool.
/// </summary>
internal static class TenantScope
{
    public const string SetTenantSql = "SELECT set_config('atp.tenant_id', $1, true)";

    public static NpgsqlBatchCommand SetTenant(string tenantId) => Command(SetTenantSql, tenantId);

    public static NpgsqlBatchCommand Command(string sql, params object?[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        return command;
    }

    /// <summary>A batch of <paramref name="commands"/> run as <paramref name="tenantId"/>.</summary>
    public static NpgsqlBatch Batch(NpgsqlConnection connection, string tenantId, params NpgsqlBatchCommand[] commands)
    {
        var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(SetTenant(tenantId));
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
        }

        return batch;
    }
}
