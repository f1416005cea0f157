using Atp.Core.Tenants;
using Atp.Storage.Postgres;
using Atp.Storage.Postgres.Tests;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Cli.Tests.Admin;

/// <summary><c>atp admin migrate</c> against a real, empty PostgreSQL database.</summary>
public sealed class AdminMigrateCommandTests
{
    [Fact]
    public async Task Migrates_an_empty_database_so_the_application_role_can_run_a_store_and_is_idempotent()
    {
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync(migrated: false);
        var owner = server.ConnectionString(database, PostgresServer.OwnerRole);

        var first = await CliRun.InProcessAsync("admin", "migrate", "--connection", owner, "--app-role", PostgresServer.AppRole);
        var again = await CliRun.InProcessAsync("admin", "migrate", "--connection", owner, "--app-role", PostgresServer.AppRole);

        Assert.Equal(0, first.ExitCode);
        Assert.Contains($"version {await SchemaVersionAsync(owner)}", first.Output, StringComparison.Ordinal);
        Assert.Equal(0, again.ExitCode);
        await using var store = new PostgresStore(
            Options.Create(new PostgresStoreOptions { ConnectionString = server.ConnectionString(database, PostgresServer.AppRole) }),
            TimeProvider.System, NullLogger<PostgresStore>.Instance);
        Assert.True(await store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), default));
    }

    [Fact]
    public async Task Reads_the_owner_connection_from_the_environment_in_a_separate_process()
    {
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync(migrated: false);

        var result = await CliRun.ProcessAsync(
            new Dictionary<string, string> { ["ATP_ADMIN_CONNECTION"] = server.ConnectionString(database, PostgresServer.OwnerRole) },
            "admin", "migrate", "--app-role", PostgresServer.AppRole);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains($"version {await SchemaVersionAsync(server.ConnectionString(database, PostgresServer.OwnerRole))}", result.Output, StringComparison.Ordinal);
    }

    // The version the database holds after the command: what the command must report.
    private static async Task<int> SchemaVersionAsync(string connectionString)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("SELECT MAX(version) FROM atp.schema_version", connection);
        var version = (int)(await command.ExecuteScalarAsync())!;
        Assert.True(version >= 1);
        return version;
    }

    [Fact]
    public async Task Without_an_owner_connection_exits_2_and_says_where_to_give_it()
    {
        var result = await CliRun.InProcessAsync("admin", "migrate", "--app-role", "atp_app");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ATP_ADMIN_CONNECTION", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_exits_2_without_printing_the_connection_string()
    {
        var result = await CliRun.InProcessAsync(
            "admin", "migrate", "--connection", "Host=/nonexistent-socket-dir;Username=owner;Password=hunter2;Timeout=2", "--app-role", "atp_app");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("migration failed", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Error, StringComparison.Ordinal);
    }
}
