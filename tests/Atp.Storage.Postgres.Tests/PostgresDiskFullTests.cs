using System.Collections.Concurrent;
using System.Diagnostics;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Atp.Storage.Postgres.Tests;

/// <summary>
/// PostgreSQL out of disk, for real: the test database lives in a tablespace on a small tmpfs, the rest of the tmpfs
/// taken by a filler file, so PostgreSQL answers appends with "could not extend file" (SQLSTATE 53100). The store
/// refuses them with <see cref="StorageFullException"/>, reports the full state, logs it once (not per batch), and
/// appends again once space returns. Mounting needs root (CI runs as root): without it the test fails and says so.
/// </summary>
public sealed class PostgresDiskFullTests
{
    [Fact]
    public async Task Disk_full_refuses_appends_as_storage_full_logs_once_and_recovers_when_space_returns()
    {
        Assert.True(Environment.IsPrivilegedProcess, "PostgresDiskFullTests mount a tmpfs and need root (CI runs the tests as root); run them as root.");
        var server = await PostgresServer.GetAsync();
        var parent = Directory.CreateTempSubdirectory("atp-pg-full-").FullName;
        var mount = Path.Combine(parent, "tablespace");
        Directory.CreateDirectory(mount);
        await RunAsync("chmod", "711", parent); // the server runs as postgres and must reach the mount
        await RunAsync("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount);
        var tablespace = $"atp_full_{Environment.ProcessId}";
        var database = $"atp_full_{Environment.ProcessId}";
        var filler = Path.Combine(mount, "filler");
        try
        {
            await RunAsync("chown", "postgres:postgres", mount);
            await SuperuserAsync($"CREATE TABLESPACE {tablespace} LOCATION '{mount}'");
            await SuperuserAsync($"CREATE DATABASE {database} OWNER {PostgresServer.OwnerRole} TEMPLATE atp_template TABLESPACE {tablespace}");

            var log = new LinesLogger();
            var store = new PostgresStore(
                Options.Create(new PostgresStoreOptions { ConnectionString = server.ConnectionString(database, PostgresServer.AppRole) }), TimeProvider.System, log);
            try
            {
                Assert.True(await store.TryCreateTenantAsync(
                    new Tenant("acme", "acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch),
                    CancellationToken.None));
                await AppendAsync(store, 0);

                Fill(filler);
                StorageFullException? refused = null;
                for (var i = 1; i < 2000 && refused is null; i++)
                {
                    refused = await Record.ExceptionAsync(() => AppendAsync(store, i)) as StorageFullException;
                }

                Assert.NotNull(refused);
                Assert.True(store.Space.IsFull);
                var sizeWhenFull = (await store.GetTreeHeadAsync("acme", CancellationToken.None))!.Size;
                for (var i = 0; i < 10; i++)
                {
                    await Assert.ThrowsAsync<StorageFullException>(() => AppendAsync(store, 5000 + i));
                }

                Assert.Equal(sizeWhenFull, (await store.GetTreeHeadAsync("acme", CancellationToken.None))!.Size);
                Assert.Single(log.Lines, l => l.Contains("disk is full", StringComparison.Ordinal));
                Assert.DoesNotContain(log.Lines, l => l.Contains("Group commit of", StringComparison.Ordinal));

                File.Delete(filler);
                await AppendAsync(store, 9000);
                Assert.False(store.Space.IsFull);
                Assert.Single(log.Lines, l => l.Contains("has room again", StringComparison.Ordinal));
            }
            finally
            {
                await store.DisposeAsync();
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await SuperuserAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            await SuperuserAsync($"DROP TABLESPACE IF EXISTS {tablespace}");
            await RunAsync("umount", "-l", mount);
            Directory.Delete(parent, recursive: true);
        }

        async Task SuperuserAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(server.ConnectionString("postgres", "postgres"));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    // 50 events of ~4 KiB each: the tablespace fills within a few requests once the filler took the rest.
    private static async Task AppendAsync(PostgresStore store, int n)
    {
        var entries = Enumerable.Range(0, 50).Select(i => TestEntries.Create($"{n}-{i}-{new string('x', 4000)}", DateTimeOffset.UtcNow)).ToList();
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", entries, null), CancellationToken.None));
    }

    private static void Fill(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1);
        foreach (var chunk in new[] { 1 << 20, 1 << 12 })
        {
            var zeros = new byte[chunk];
            try
            {
                while (true)
                {
                    stream.Write(zeros);
                }
            }
            catch (IOException)
            {
                // This chunk size no longer fits; a smaller one may.
            }
        }
    }

    private static async Task RunAsync(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{command} {string.Join(' ', arguments)} failed: {error}");
    }

    // The store's log lines, formatted: what an operator would read.
    private sealed class LinesLogger : ILogger<PostgresStore>
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
