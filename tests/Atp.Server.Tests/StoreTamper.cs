using Microsoft.Data.Sqlite;
using Npgsql;

namespace Atp.Server.Tests;

/// <summary>
/// Alters a server's stored log rows behind its back, as a disk fault or an intruder would: on SQLite through its own
/// connection to <c>atp.db</c>, on PostgreSQL as the owner role (the application role may not UPDATE the log at all).
/// </summary>
internal sealed class StoreTamper(string dataDirectory, IReadOnlyList<string> storageArguments)
{
    private const string AdminArgument = "--ConnectionStrings:AtpAdmin=";

    private string? OwnerConnection => storageArguments.FirstOrDefault(a => a.StartsWith(AdminArgument, StringComparison.Ordinal))?[AdminArgument.Length..];

    /// <summary>Flips <paramref name="mask"/> into the byte at <paramref name="offset"/> of a log row's column (leaf or nodes).</summary>
    public async Task FlipAsync(string column, string tenant, ulong index, int offset, byte mask = 0x01)
    {
        if (OwnerConnection is { } owner)
        {
            await using var connection = new NpgsqlConnection(owner);
            await connection.OpenAsync();
            await using var read = new NpgsqlCommand($"SELECT {column} FROM atp.log_entries WHERE tenant_id = $1 AND idx = $2", connection);
            read.Parameters.Add(new NpgsqlParameter { Value = tenant });
            read.Parameters.Add(new NpgsqlParameter { Value = (long)index });
            var bytes = (byte[])(await read.ExecuteScalarAsync())!;
            bytes[offset] ^= mask;
            await using var write = new NpgsqlCommand($"UPDATE atp.log_entries SET {column} = $3 WHERE tenant_id = $1 AND idx = $2", connection);
            write.Parameters.Add(new NpgsqlParameter { Value = tenant });
            write.Parameters.Add(new NpgsqlParameter { Value = (long)index });
            write.Parameters.Add(new NpgsqlParameter { Value = bytes });
            Assert.Equal(1, await write.ExecuteNonQueryAsync());
            return;
        }

        using var sqlite = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataDirectory, "atp.db"), Pooling = false, DefaultTimeout = 30 }.ToString());
        sqlite.Open();
        using var number = sqlite.CreateCommand();
        number.CommandText = "SELECT num FROM tenants WHERE id = $t";
        number.Parameters.AddWithValue("$t", tenant);
        var rowId = ((long)number.ExecuteScalar()! << 40) | (long)index;
        using var select = sqlite.CreateCommand();
        select.CommandText = $"SELECT {column} FROM log_entries WHERE id = {rowId}";
        var stored = (byte[])select.ExecuteScalar()!;
        stored[offset] ^= mask;
        using var update = sqlite.CreateCommand();
        update.CommandText = $"UPDATE log_entries SET {column} = $v WHERE id = {rowId}";
        update.Parameters.AddWithValue("$v", stored);
        Assert.Equal(1, update.ExecuteNonQuery());
    }

    /// <summary>The offset of the first occurrence of <paramref name="text"/> in the stored leaf (to alter content, not syntax).</summary>
    public static int OffsetOf(byte[] leaf, string text) => leaf.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(text));
}
