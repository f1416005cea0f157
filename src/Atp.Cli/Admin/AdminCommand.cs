using System.CommandLine;
using Atp.Storage.Postgres;
using Npgsql;

namespace Atp.Cli.Admin;

/// <summary><c>atp admin</c>: operations on a cell's store that need the owner role.</summary>
internal static class AdminCommand
{
    /// <summary>Where the owner role's connection string is read from when <c>--connection</c> is not given.</summary>
    public const string AdminConnectionVariable = "ATP_ADMIN_CONNECTION";

    public static Command Create(CliEnvironment environment)
    {
        var admin = new Command("admin", "Administration of a cell: its PostgreSQL schema (owner role), its platform-admin keys, backup and restore.");
        admin.Subcommands.Add(CreateMigrate());
        admin.Subcommands.Add(AdminKeysCommand.Create(environment));
        admin.Subcommands.Add(BackupCommand.Create(environment));
        admin.Subcommands.Add(RestoreCommand.Create());
        admin.Subcommands.Add(AcceptRollbackCommand.Create(environment));
        return admin;
    }

    private static Command CreateMigrate()
    {
        var connection = new Option<string?>("--connection")
        {
            Description = $"Connection string of the owner role that owns the ATP schema (default: the {AdminConnectionVariable} environment variable)",
        };
        var appRole = new Option<string>("--app-role")
        {
            Description = "The application role the servers connect as (ConnectionStrings:Atp); it is granted only what the store needs",
            Required = true,
        };
        var command = new Command("migrate", "Create or upgrade the ATP schema (versioned, idempotent) and grant the application role.") { connection, appRole };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(connection) ?? Environment.GetEnvironmentVariable(AdminConnectionVariable), parse.GetValue(appRole)!, parse.InvocationConfiguration.Output));
        return command;
    }

    private static async Task<int> RunAsync(string? connectionString, string appRole, TextWriter output)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new CliInputException($"no owner connection: pass --connection or set {AdminConnectionVariable}");
        }

        int version;
        try
        {
            version = PostgresStore.Migrate(connectionString, appRole);
        }
        catch (Exception e) when (e is NpgsqlException or ArgumentException or InvalidOperationException)
        {
            // The message names the problem (unreachable server, wrong password, newer schema); never the connection string.
            throw new CliInputException($"migration failed: {e.Message}");
        }

        await output.WriteLineAsync($"ATP schema is at version {version}; role '{appRole}' is granted what the store needs.").ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
