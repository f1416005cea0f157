using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>Tenant id → tenant num, cached: a tenant's num is assigned once and never changes.</summary>
internal sealed class TenantNumbers
{
    private readonly ConcurrentDictionary<string, long> _numbers = new(StringComparer.Ordinal);

    public long? Find(SqliteConnection connection, SqliteTransaction? transaction, string tenantId)
    {
        if (_numbers.TryGetValue(tenantId, out var known))
        {
            return known;
        }

        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT num FROM tenants WHERE id = $id";
        command.Parameters.AddWithValue("$id", tenantId);
        if (command.ExecuteScalar() is not long number)
        {
            return null;
        }

        _numbers[tenantId] = number;
        return number;
    }
}
