using Atp.Storage.Postgres.Tests;
using Npgsql;

namespace Atp.Server.Tests;

/// <summary>The server tests really run on the engine they are meant to (ATP_TEST_STORAGE), and a wrong setting stops the start.</summary>
public sealed class StorageEngineTests
{
    [Fact]
    public async Task The_server_stores_into_the_engine_the_test_run_selected()
    {
        await using var server = await ServerFixture.StartAsync();
        await server.CreateTenantWithKeyAsync("engine-check");

        if (TestStorage.IsPostgres)
        {
            var app = server.StorageArguments.Single(a => a.StartsWith("--ConnectionStrings:Atp=", StringComparison.Ordinal));
            var database = new NpgsqlConnectionStringBuilder(app["--ConnectionStrings:Atp=".Length..]).Database!;
            var postgres = await PostgresServer.GetAsync();
            await using var connection = new NpgsqlConnection(postgres.ConnectionString(database, PostgresServer.OwnerRole));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT count(*) FROM atp.tenants WHERE tenant_id = 'engine-check'", connection);
            Assert.Equal(1L, await command.ExecuteScalarAsync());
            Assert.False(File.Exists(Path.Combine(server.DataDirectory, "atp.db")));
        }
        else
        {
            Assert.Empty(server.StorageArguments);
            Assert.True(File.Exists(Path.Combine(server.DataDirectory, "atp.db")));
        }
    }

    [Fact]
    public void An_unknown_storage_provider_stops_the_start_with_the_allowed_values()
    {
        var error = Assert.ThrowsAny<Exception>(() => AtpServer.Build(["--Atp:Storage:Provider=mongodb", "--urls", "http://127.0.0.1:0"]));

        Assert.Contains("'sqlite' or 'postgres'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_postgres_server_without_the_application_connection_does_not_start()
    {
        var directory = Directory.CreateTempSubdirectory("atp-no-connection-").FullName;
        try
        {
            var app = AtpServer.Build(["--Atp:Storage:Provider=postgres", "--urls", "http://127.0.0.1:0", $"--Atp:DataDirectory={directory}"]);
            await using (app)
            {
                var error = await Assert.ThrowsAnyAsync<Exception>(() => AtpServer.InitializeAsync(app, CancellationToken.None));
                Assert.Contains("ConnectionString", error.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

    }
}
