using System.Diagnostics;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Storage.Sqlite;

namespace Atp.QueryBench;

/// <summary>
/// <c>generate</c>: one tenant of N events appended through <see cref="IngestionService"/> (batches of 1,000 from
/// several concurrent callers, so the sequencer's group commit shares fsyncs), then projected with the server's loop
/// (<c>ProjectPendingAsync(ProjectionLoop.MaxEntriesPerTurn)</c> until nothing is pending, as the server's loop does when behind).
/// </summary>
internal static class GenerateRun
{
    public const int BatchSize = 1000;
    public const int ProjectBatch = ProjectionLoop.MaxEntriesPerTurn;

    public static async Task<int> RunAsync(string directory, long events, int seed, int callers, int progressSeconds, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP query bench, generate: {BenchSupport.CommandLine(args)}");
        Console.WriteLine($"  machine: {BenchSupport.Machine()}, load average {BenchSupport.LoadAverage():0.0}");
        if (Manifest.Read(directory) is { } existing)
        {
            if (existing.Events == events && existing.Seed == seed)
            {
                Console.WriteLine($"  {directory} already holds the complete data set ({BenchSupport.N0(existing.Events)} events, seed {existing.Seed}, generated {existing.GeneratedAt:yyyy-MM-dd HH:mm} UTC: appended {BenchSupport.N0(existing.AppendPerSecond)} events/s, projected {BenchSupport.N0(existing.ProjectPerSecond)} events/s, {BenchSupport.Gb(existing.DatabaseBytes)} GB); nothing to do.");
                return 0;
            }

            await Console.Error.WriteLineAsync($"atp-querybench: {directory} holds a different data set ({existing.Events} events, seed {existing.Seed}); use another directory.");
            return 2;
        }

        if (File.Exists(BenchSupport.DatabasePath(directory)))
        {
            await Console.Error.WriteLineAsync($"atp-querybench: {directory} holds an incomplete data set (no {Manifest.FileName}); delete the directory and run again.");
            return 2;
        }

        var model = new DataSetModel(seed);
        var end = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var store = BenchSupport.OpenStore(directory);
        await using (store.ConfigureAwait(false))
        {
            if (!await store.TryCreateTenantAsync(DataSetModel.CreateTenant(), cancellationToken))
            {
                throw new InvalidOperationException("The tenant exists already.");
            }

            Console.WriteLine($"  {BenchSupport.N0(events)} events into {BenchSupport.DatabasePath(directory)}: {model.ActorCount} actors, {DataSetModel.Prefixes.Length} action prefixes, {DataSetModel.TargetTypes.Length} target types, a year of occurredAt up to {end:yyyy-MM-dd}; seed {seed}");
            Console.WriteLine($"Append: {callers} callers × batches of {BatchSize:N0} through IngestionService");
            var ingestion = new IngestionService(store, TimeProvider.System);
            var batches = (events + BatchSize - 1) / BatchSize;
            long nextBatch = -1;
            long appended = 0;
            var cpu = new CpuWindow();
            var clock = Stopwatch.StartNew();
            using var progress = Progress(progressSeconds, () => $"  append {clock.Elapsed.TotalSeconds,6:0} s: {BenchSupport.N0(Interlocked.Read(ref appended))} events ({BenchSupport.N0(Interlocked.Read(ref appended) / clock.Elapsed.TotalSeconds)}/s)");
            var workers = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
            {
                long batch;
                while ((batch = Interlocked.Increment(ref nextBatch)) < batches)
                {
                    var first = batch * BatchSize;
                    var drafts = model.Batch(first, (int)Math.Min(BatchSize, events - first), events, end);
                    if (await ingestion.AppendAsync(DataSetModel.TenantId, drafts, null, cancellationToken) is not Appended)
                    {
                        throw new InvalidOperationException($"Batch {batch} was not appended.");
                    }

                    Interlocked.Add(ref appended, drafts.Length);
                }
            }, cancellationToken)).ToArray();
            await Task.WhenAll(workers);
            var appendSeconds = clock.Elapsed.TotalSeconds;
            var appendRate = appended / appendSeconds;
            progress.Dispose();
            Console.WriteLine($"Appended {BenchSupport.N0(appended)} events in {appendSeconds:0.0} s: {BenchSupport.N0(appendRate)} events/s; CPU {cpu.Describe()}");

            Console.WriteLine($"Project: ProjectPendingAsync({ProjectBatch:N0}) until nothing is pending (the server's loop when behind)");
            var projectCpu = new CpuWindow();
            var projectClock = Stopwatch.StartNew();
            long projected = 0;
            using (Progress(progressSeconds, () => $"  project {projectClock.Elapsed.TotalSeconds,6:0} s: {BenchSupport.N0(Interlocked.Read(ref projected))} events ({BenchSupport.N0(Interlocked.Read(ref projected) / projectClock.Elapsed.TotalSeconds)}/s)"))
            {
                int done;
                while ((done = await store.ProjectPendingAsync(ProjectBatch, cancellationToken)) > 0)
                {
                    Interlocked.Add(ref projected, done);
                }
            }

            var projectSeconds = projectClock.Elapsed.TotalSeconds;
            var projectRate = projected / projectSeconds;
            Console.WriteLine($"Projected {BenchSupport.N0(projected)} events in {projectSeconds:0.0} s: {BenchSupport.N0(projectRate)} events/s; CPU {projectCpu.Describe()}");
            var status = await store.GetProjectionStatusAsync(DataSetModel.TenantId, cancellationToken);
            if (status is null || status.ProjectedSize != (ulong)events || status.TreeSize != (ulong)events)
            {
                throw new InvalidOperationException($"Expected {events} projected entries, have {status}.");
            }

            // Fold the WAL back so the size below is the database's.
            await CheckpointAsync(store.DatabasePath, cancellationToken);
            await CheckpointAsync(BenchSupport.ReadModelPath(directory), cancellationToken);
            var bytes = BenchSupport.DatabaseBytes(directory);
            new Manifest(events, seed, end, appendRate, projectRate, bytes, DateTimeOffset.UtcNow).Write(directory);
            Console.WriteLine();
            Console.WriteLine("```markdown");
            Console.WriteLine($"| events | appended (events/s) | projected (events/s) | database | seed |");
            Console.WriteLine($"| ---: | ---: | ---: | ---: | ---: |");
            Console.WriteLine($"| {BenchSupport.N0(events)} | {BenchSupport.N0(appendRate)} ({appendSeconds:0} s) | {BenchSupport.N0(projectRate)} ({projectSeconds:0} s) | {BenchSupport.Gb(bytes)} GB ({bytes / (double)events:0} B/event) | {seed} |");
            Console.WriteLine("```");
        }

        return 0;
    }

    private static async Task CheckpointAsync(string databasePath, CancellationToken cancellationToken)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={databasePath}");
        await connection.OpenAsync(cancellationToken);
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Prints a progress line every few seconds until disposed.</summary>
    public static Timer Progress(int seconds, Func<string> line) =>
        seconds <= 0
            ? new Timer(_ => { })
            : new Timer(_ => Console.WriteLine(line()), null, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(seconds));
}
