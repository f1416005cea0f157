using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Atp.Storage.Postgres.Tests;

/// <summary>
/// A throwaway PostgreSQL server for one test run: <c>initdb</c> into a fresh temporary directory, <c>pg_ctl start</c>
/// with the socket in that directory (no TCP listener, so no port clash and nothing reachable from outside), fsync and
/// synchronous_commit on (the same durability as SQLite's synchronous=FULL). As root it runs as the <c>postgres</c> user
/// through <c>runuser</c>. One server per test process, started on first use and killed when the process exits; a
/// server or directory left behind by a killed test process is stopped and removed by the next run. Each test class
/// (or server under test) gets its own database.
/// </summary>
public sealed class PostgresServer
{
    public const string OwnerRole = "atp_owner";
    public const string AppRole = "atp_app";
    private const string TemplateDatabase = "atp_template";
    private const string DirectoryPrefix = "atp-pg-";

    private static readonly Lazy<Task<PostgresServer>> Shared = new(() => Task.Run(Start));
    private static int _databases;

    private readonly string _directory;
    private readonly string _bin;
    private readonly int _port;

    private PostgresServer(string directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        _port = port;
    }

    private string SocketDirectory => _directory;

    /// <summary>The server of this test run; starts it on first use. Fails (never skips) when PostgreSQL is not installed.</summary>
    public static Task<PostgresServer> GetAsync() => Shared.Value;

    /// <summary>Connection string for <paramref name="user"/> on <paramref name="database"/>, through the socket.</summary>
    public string ConnectionString(string database, string user, int maxPoolSize = 20) => new NpgsqlConnectionStringBuilder
    {
        Host = SocketDirectory,
        Port = _port,
        Database = database,
        Username = user,
        MaxPoolSize = maxPoolSize,
        Timeout = 30,
    }.ToString();

    /// <summary>
    /// A new, empty database owned by <see cref="OwnerRole"/>. With <paramref name="migrated"/> it is a copy of a
    /// template on which the ATP migrations already ran (faster than migrating each database).
    /// </summary>
    public async Task<string> CreateDatabaseAsync(bool migrated = true)
    {
        var name = $"atp_test_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", "postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"CREATE DATABASE {name} OWNER {OwnerRole} TEMPLATE {(migrated ? TemplateDatabase : "template0")}", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    public async Task DropDatabaseAsync(string database)
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", "postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static PostgresServer Start()
    {
        StopOrphans();
        var bin = FindBinaries();
        var directory = Directory.CreateTempSubdirectory(DirectoryPrefix).FullName;
        File.WriteAllText(Path.Combine(directory, "owner.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var server = new PostgresServer(directory, bin, FreePort());
        if (IsRoot)
        {
            Run("chown", "-R", "postgres:postgres", directory);
        }

        server.PgTool("initdb", "-D", server.DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync");
        try
        {
            server.PgTool(
                "pg_ctl", "-D", server.DataDirectory, "-l", Path.Combine(directory, "server.log"), "-w", "-t", "60",
                "-o", $"-p {server._port} -k {directory} -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=400 -c shared_buffers=64MB",
                "start");
        }
        catch (InvalidOperationException e)
        {
            var log = Path.Combine(directory, "server.log");
            throw new InvalidOperationException($"{e.Message}\nserver.log:\n{(File.Exists(log) ? File.ReadAllText(log) : "(none)")}", e);
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        server.CreateRolesAndTemplate();
        return server;
    }

    /// <summary>The cluster's data directory (PGDATA), for tests that look at what the server's files hold.</summary>
    public string DataDirectory => Path.Combine(_directory, "data");

    private void CreateRolesAndTemplate()
    {
        using (var connection = new NpgsqlConnection(ConnectionString("postgres", "postgres")))
        {
            connection.Open();
            using var roles = new NpgsqlCommand(
                $"""
                CREATE ROLE {OwnerRole} LOGIN NOSUPERUSER NOBYPASSRLS;
                CREATE ROLE {AppRole} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                """,
                connection);
            roles.ExecuteNonQuery();
            using var database = new NpgsqlCommand($"CREATE DATABASE {TemplateDatabase} OWNER {OwnerRole} TEMPLATE template0", connection);
            database.ExecuteNonQuery();
        }

        PostgresStore.Migrate(ConnectionString(TemplateDatabase, OwnerRole, maxPoolSize: 1), AppRole);
        NpgsqlConnection.ClearAllPools();
    }

    // At process exit the test runner gives little time (it kills the test host soon after the last test), too
    // little to run pg_ctl: the postmaster is killed directly (its children exit when it dies; the data is throwaway).
    private void Stop()
    {
        try
        {
            KillPostmaster();

            // Deleting tens of megabytes often outlasts the test host; what is left is removed by the next run.
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or ArgumentException or System.ComponentModel.Win32Exception)
        {
            // The process is exiting; the next run stops and removes what is left.
        }
    }

    // The postmaster of this directory, if one runs: checked by its command line, since a recorded pid may since have
    // been reused by an unrelated process (pid_max is often 32768).
    private void KillPostmaster()
    {
        var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid))
        {
            return;
        }

        try
        {
            if (!File.ReadAllText($"/proc/{pid}/cmdline").Contains(DataDirectory, StringComparison.Ordinal))
            {
                return;
            }

            using var postmaster = Process.GetProcessById(pid);
            postmaster.Kill();
            postmaster.WaitForExit(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
        {
            // Gone already.
        }
    }

    // Servers of test processes that died without stopping them: their directory names a process that is gone.
    private static void StopOrphans()
    {
        foreach (var directory in Directory.GetDirectories(Path.GetTempPath(), DirectoryPrefix + "*"))
        {
            // Without its owner file a directory is either being created right now or half deleted at an exit.
            var pidFile = Path.Combine(directory, "owner.pid");
            var orphaned = File.Exists(pidFile)
                ? int.TryParse(File.ReadAllText(pidFile), out var pid) && !IsAlive(pid)
                : Directory.GetLastWriteTimeUtc(directory) < DateTime.UtcNow.AddMinutes(-5);
            if (!orphaned)
            {
                continue;
            }

            new PostgresServer(directory, "", 0).KillPostmaster();
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // Another test process is sweeping it at the same moment.
            }
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string FindBinaries()
    {
        const string root = "/usr/lib/postgresql";
        var bin = Directory.Exists(root)
            ? Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            "The PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/<version>/bin). " +
            "Install them with: apt-get update && apt-get install -y postgresql   (eng/test.sh does this when run as root).");
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void PgTool(string tool, params string[] arguments)
    {
        var path = Path.Combine(_bin, tool);
        if (IsRoot)
        {
            Run("runuser", ["-u", "postgres", "--", path, .. arguments]);
        }
        else
        {
            Run(path, arguments);
        }
    }

    private static void Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} did not finish within 2 minutes.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited with {process.ExitCode}: {stdout.Result}{stderr.Result}");
        }
    }
}
