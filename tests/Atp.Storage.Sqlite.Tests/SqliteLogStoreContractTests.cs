using Atp.Integrity;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>The storage contract on the embedded engine: a real SQLite file in a fresh temporary directory per test.</summary>
public sealed class SqliteLogStoreContractTests : LogStoreContract<SqliteStore>
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-sqlite-contract-").FullName;

    protected override Task<SqliteStore> OpenStoreAsync(TimeProvider clock) =>
        Task.FromResult(new SqliteStore(
            Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), clock, NullLogger<SqliteStore>.Instance));

    protected override Task RedeliverOutboxAsync(string tenantId, ulong first, ulong last) =>
        ExecuteAsync("atp.db", $"INSERT INTO outbox (tenant_id, first_idx, last_idx) VALUES ('{tenantId}', {first}, {last})");

    protected override Task WipeReadModelsAsync() => ExecuteAsync("atp-read.db", "DELETE FROM event_index; DELETE FROM event_targets; DELETE FROM event_text;");

    protected override Task FlipNodeBitAsync(string tenantId, NodeId node)
    {
        var leaf = ((node.Index + 1) << node.Level) - 1;
        FlipBit("log_entries", "nodes", $"id = ((SELECT num FROM tenants WHERE id = '{tenantId}') << 40) | {leaf}", (node.Level - 1) * Hash.Size);
        return Task.CompletedTask;
    }

    protected override Task AlterHeadRootAsync(string tenantId)
    {
        FlipBit("tree_heads", "root", $"tenant_id = '{tenantId}'", 0);
        return Task.CompletedTask;
    }

    // Read, flip, write back: the blob keeps its length, as a flipped bit on disk would.
    private void FlipBit(string table, string column, string row, int offset)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
        connection.Open();
        using var read = connection.CreateCommand();
        read.CommandText = $"SELECT {column} FROM {table} WHERE {row}";
        var bytes = (byte[])read.ExecuteScalar()!;
        bytes[offset] ^= 1;
        using var write = connection.CreateCommand();
        write.CommandText = $"UPDATE {table} SET {column} = $value WHERE {row}";
        write.Parameters.AddWithValue("$value", bytes);
        Assert.Equal(1, write.ExecuteNonQuery());
    }

    // Behind the store's back, through a separate unpooled connection.
    private Task ExecuteAsync(string file, string sql)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, file), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    protected override Task DeleteStorageAsync()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        return Task.CompletedTask;
    }
}
