using System.Diagnostics;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;

namespace Atp.QueryBench;

/// <summary>
/// <c>freshness</c>: on a fresh store, an open-loop appender (batches of 100 through <see cref="IngestionService"/>
/// sent at fixed intervals whatever the previous ones are doing, occurredAt = the time of sending) while the server's
/// projection loop (<see cref="ProjectionLoop"/>) runs; every 100 ms the lag now − <c>OldestUnprojectedAsync</c>
/// (0 when nothing waits) is sampled.
/// </summary>
internal static class FreshnessRun
{
    private const int Batch = 100;
    private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(100);

    public static async Task<int> RunAsync(string directory, int rate, int seconds, int seed, int progressSeconds, string[] args, CancellationToken cancellationToken)
    {
        if (File.Exists(BenchSupport.DatabasePath(directory)))
        {
            await Console.Error.WriteLineAsync($"atp-querybench: freshness needs a fresh directory; {directory} holds a database.");
            return 2;
        }

        Console.WriteLine($"ATP query bench, freshness: {BenchSupport.CommandLine(args)}");
        Console.WriteLine($"  machine: {BenchSupport.Machine()}, load average {BenchSupport.LoadAverage():0.0}");
        var model = new DataSetModel(seed);
        var random = new Random(seed);

        // A pool of prepared batches (the appender's own CPU stays small); IngestionService gives each event a new id.
        var pool = Enumerable.Range(0, 200).Select(_ => Enumerable.Range(0, Batch).Select(_ => model.Draft(random, DateTimeOffset.UtcNow)).ToArray()).ToArray();
        var store = BenchSupport.OpenStore(directory);
        await using (store.ConfigureAwait(false))
        {
            await store.TryCreateTenantAsync(DataSetModel.CreateTenant(), cancellationToken);
            var ingestion = new IngestionService(store, TimeProvider.System);
            var interval = TimeSpan.FromSeconds((double)Batch / rate);
            Console.WriteLine($"  open loop: {rate:N0} events/s = a batch of {Batch} every {interval.TotalMilliseconds:0.00} ms for {seconds} s; the server's projection loop (linger {ProjectionLoop.Linger.TotalMilliseconds:0} ms, up to {ProjectionLoop.MaxEntriesPerTurn:N0} entries a turn); lag sampled every {SampleEvery.TotalMilliseconds:0} ms");

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            long appended = 0;
            var loop = new ProjectionLoop(store, TimeProvider.System);
            var appendLatencies = new List<double>();
            var lags = new List<double>();
            var clock = Stopwatch.StartNew();
            var cpu = new CpuWindow();

            var projector = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await Task.Delay(await loop.StepAsync(CancellationToken.None), CancellationToken.None);
                }
            }, CancellationToken.None);

            var sampler = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(SampleEvery);
                while (await timer.WaitForNextTickAsync(CancellationToken.None) && !stop.IsCancellationRequested)
                {
                    var oldest = await store.OldestUnprojectedAsync(CancellationToken.None);
                    var now = DateTimeOffset.UtcNow;
                    lock (lags)
                    {
                        lags.Add(oldest is { } at && now > at ? (now - at).TotalMilliseconds : 0);
                    }
                }
            }, CancellationToken.None);

            using var progress = GenerateRun.Progress(progressSeconds, () =>
            {
                double lag;
                lock (lags)
                {
                    lag = lags.Count > 0 ? lags[^1] : 0;
                }

                return $"  {clock.Elapsed.TotalSeconds,4:0} s: appended {BenchSupport.N0(Interlocked.Read(ref appended))}, projected {BenchSupport.N0(loop.Projected)}, lag now {lag:0} ms";
            });

            // Open loop: batch k is due at k × interval; late batches are sent at once (never skipped), none waits for another.
            var inFlight = new List<Task>();
            var end = TimeSpan.FromSeconds(seconds);
            long sent = 0;
            while (clock.Elapsed < end)
            {
                var due = (long)(clock.Elapsed / interval) + 1;
                for (; sent < due; sent++)
                {
                    var now = DateTimeOffset.UtcNow;
                    var drafts = Array.ConvertAll(pool[sent % pool.Length], draft => draft with { OccurredAt = now });
                    var started = clock.Elapsed;
                    inFlight.Add(Task.Run(async () =>
                    {
                        if (await ingestion.AppendAsync(DataSetModel.TenantId, drafts, null, CancellationToken.None) is not Appended)
                        {
                            throw new InvalidOperationException("A batch was not appended.");
                        }

                        Interlocked.Add(ref appended, drafts.Length);
                        lock (appendLatencies)
                        {
                            appendLatencies.Add((clock.Elapsed - started).TotalMilliseconds);
                        }
                    }, CancellationToken.None));
                }

                inFlight.RemoveAll(t => t.IsCompletedSuccessfully);
                await Task.Delay(1, CancellationToken.None);
            }

            var sendSeconds = clock.Elapsed.TotalSeconds;
            await Task.WhenAll(inFlight);
            var appendedInWindow = Interlocked.Read(ref appended);
            var achieved = appendedInWindow / clock.Elapsed.TotalSeconds;
            var cpuText = cpu.Describe();

            // Let the projector drain what is left, then stop the loops.
            var drain = Stopwatch.StartNew();
            while (await store.OldestUnprojectedAsync(CancellationToken.None) is not null && drain.Elapsed < TimeSpan.FromMinutes(5))
            {
                await Task.Delay(10, CancellationToken.None);
            }

            await stop.CancelAsync();
            await Task.WhenAll(projector, sampler);
            progress.Dispose();

            double[] lagValues;
            lock (lags)
            {
                lagValues = [.. lags];
            }

            Console.WriteLine($"Appended {BenchSupport.N0(appendedInWindow)} events in {sendSeconds:0.0} s of sending: {BenchSupport.N0(achieved)} events/s achieved (asked {BenchSupport.N0(rate)}); append latency p50 {BenchSupport.Ms(BenchSupport.Percentile(appendLatencies, 50))} p95 {BenchSupport.Ms(BenchSupport.Percentile(appendLatencies, 95))} max {BenchSupport.Ms(BenchSupport.Percentile(appendLatencies, 100))} ms");
            Console.WriteLine($"Lag ({lagValues.Length} samples): p50 {BenchSupport.Ms(BenchSupport.Percentile(lagValues, 50))} ms, p95 {BenchSupport.Ms(BenchSupport.Percentile(lagValues, 95))} ms, max {BenchSupport.Ms(BenchSupport.Percentile(lagValues, 100))} ms; drained {drain.Elapsed.TotalMilliseconds:0} ms after the last append; CPU {cpuText}");
            Console.WriteLine();
            Console.WriteLine("```markdown");
            Console.WriteLine($"| asked events/s | achieved events/s | append p95 ms | lag p50 ms | lag p95 ms | lag max ms | target lag p95 | met |");
            Console.WriteLine($"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            var p95 = BenchSupport.Percentile(lagValues, 95);
            Console.WriteLine($"| {BenchSupport.N0(rate)} | {BenchSupport.N0(achieved)} | {BenchSupport.Ms(BenchSupport.Percentile(appendLatencies, 95))} | {BenchSupport.Ms(BenchSupport.Percentile(lagValues, 50))} | {BenchSupport.Ms(p95)} | {BenchSupport.Ms(BenchSupport.Percentile(lagValues, 100))} | 1000 | {(p95 <= 1000 && achieved >= rate * 0.98 ? "yes" : "**no**")} |");
            Console.WriteLine("```");
            Console.WriteLine($"CPU: {cpuText}");
        }

        return 0;
    }
}
