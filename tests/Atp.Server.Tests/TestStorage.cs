using Atp.Storage.Postgres.Tests;

namespace Atp.Server.Tests;

/// <summary>
/// The engine the server tests run on: SQLite in the data directory by default; with <c>ATP_TEST_STORAGE=postgres</c>
/// (as eng/test.sh runs this project a second time) each server gets a fresh database on the test run's throwaway
/// PostgreSQL, connected as the application role, migrated at start through the owner connection.
/// </summary>
internal static class TestStorage
{
    public const string Variable = "ATP_TEST_STORAGE";

    public static bool IsPostgres => Environment.GetEnvironmentVariable(Variable) == "postgres";

    /// <summary>Server arguments selecting a new, empty store of the configured engine (none for SQLite).</summary>
    public static Task<string[]> NewStoreArgumentsAsync() => IsPostgres ? NewPostgresStoreArgumentsAsync() : Task.FromResult<string[]>([]);

    /// <summary>Server arguments for a new, empty PostgreSQL database, whatever the configured engine.</summary>
    public static async Task<string[]> NewPostgresStoreArgumentsAsync()
    {
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync(migrated: false);
        return
        [
            "--Atp:Storage:Provider=postgres",
            $"--ConnectionStrings:Atp={server.ConnectionString(database, PostgresServer.AppRole)}",
            $"--ConnectionStrings:AtpAdmin={server.ConnectionString(database, PostgresServer.OwnerRole, maxPoolSize: 2)}",

            // Required on PostgreSQL (the nodes of a cell share no data directory); one per database, as a cell's nodes share it.
            $"--Atp:Export:Directory={Directory.CreateTempSubdirectory("atp-exports-").FullName}",
        ];
    }
}
