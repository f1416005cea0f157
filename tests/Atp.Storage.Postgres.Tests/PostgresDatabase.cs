using Npgsql;

namespace Atp.Storage.Postgres.Tests;

/// <summary>A fresh, migrated database on the test run's <see cref="PostgresServer"/>, for one test class.</summary>
public sealed class PostgresDatabase : IAsyncLifetime
{
    private PostgresServer? _server;

    public PostgresServer Server => _server ?? throw new InvalidOperationException("The database is not created yet.");

    public string Name { get; private set; } = "";

    /// <summary>The application role: no ownership, no BYPASSRLS.</summary>
    public string AppConnectionString => Server.ConnectionString(Name, PostgresServer.AppRole);

    /// <summary>The owner role, which runs migrations.</summary>
    public string OwnerConnectionString => Server.ConnectionString(Name, PostgresServer.OwnerRole);

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.GetAsync();
        Name = await _server.CreateDatabaseAsync();
    }

    public Task DisposeAsync() => _server is null ? Task.CompletedTask : _server.DropDatabaseAsync(Name);

    /// <summary>Empties every ATP table (as the owner): the next store opens on empty storage.</summary>
    public async Task TruncateAsync()
    {
        await ExecuteAsOwnerAsync("TRUNCATE atp.tenants, atp.api_keys, atp.tree_heads, atp.log_entries, atp.checkpoints, atp.outbox, atp.idempotency_keys, atp.event_index, atp.projections, atp.event_types, atp.event_schemas, atp.policy_versions, atp.policy_proposals, atp.data_keys, atp.legal_holds, atp.erasure_requests, atp.dead_letters");
    }

    public async Task<object?> ExecuteAsOwnerAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
