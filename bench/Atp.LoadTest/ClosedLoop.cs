using System.Diagnostics;

namespace Atp.LoadTest;

/// <summary>The outcome of one operation: success and how many units (events, rows) it carried.</summary>
internal readonly record struct OpResult(bool Ok, int Units)
{
    public static OpResult Failed => new(false, 0);
}

/// <summary>A named CPU-time source, sampled at the start and end of the measured window.</summary>
internal sealed record CpuProbe(string Name, Func<TimeSpan?> Read);

/// <summary>Figures of the measured window of one closed-loop run.</summary>
internal sealed record LoopResult(
    double Seconds,
    long Units,
    long Operations,
    long Errors,
    long ErrorsOutsideWindow,
    long[] SortedLatencyTicks,
    IReadOnlyList<(string Name, double Cores)> Cpu)
{
    public double UnitsPerSecond => Units / Seconds;

    public double OperationsPerSecond => Operations / Seconds;

    /// <summary>Nearest-rank percentile in milliseconds; NaN without samples.</summary>
    public double PercentileMs(double p)
    {
        if (SortedLatencyTicks.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p / 100 * SortedLatencyTicks.Length);
        return SortedLatencyTicks[Math.Clamp(rank - 1, 0, SortedLatencyTicks.Length - 1)] * 1000.0 / Stopwatch.Frequency;
    }

    public double MeanMs => SortedLatencyTicks.Length == 0 ? double.NaN : SortedLatencyTicks.Average() * 1000.0 / Stopwatch.Frequency;

    /// <summary>Several measured windows as one: their sums, every latency, and CPU weighted by each window's length.</summary>
    public static LoopResult Combine(IReadOnlyList<LoopResult> windows)
    {
        if (windows.Count == 1)
        {
            return windows[0];
        }

        var seconds = windows.Sum(w => w.Seconds);
        return new LoopResult(
            seconds,
            windows.Sum(w => w.Units),
            windows.Sum(w => w.Operations),
            windows.Sum(w => w.Errors),
            windows.Sum(w => w.ErrorsOutsideWindow),
            [.. windows.SelectMany(w => w.SortedLatencyTicks).Order()],
            [.. windows[0].Cpu.Select(c => (c.Name, windows.Sum(w => w.Cpu.FirstOrDefault(x => x.Name == c.Name).Cores * w.Seconds) / seconds))]);
    }
}

/// <summary>
/// N workers, each with one operation in flight, for a warm-up and then a measured window. An operation counts in the
/// window when it completes inside it; no worker starts an operation after the window ends, and in-flight ones are
/// awaited (so the run ends by itself).
/// </summary>
internal static class ClosedLoop
{
    public static async Task<LoopResult> RunAsync(
        string label,
        int workers,
        TimeSpan warmup,
        TimeSpan duration,
        TimeSpan progressEvery,
        string unitName,
        Func<int, long, CancellationToken, Task<OpResult>> operation,
        IReadOnlyList<CpuProbe> cpuProbes,
        CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        var measureStart = start + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var measureEnd = measureStart + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var counters = new Counters();

        var cpu = SampleCpuAsync(cpuProbes, measureStart, measureEnd, cancellationToken);
        var tasks = Enumerable.Range(0, workers)
            .Select(w => Task.Run(() => WorkerAsync(w, operation, measureStart, measureEnd, counters, cancellationToken), cancellationToken))
            .ToArray();
        var all = Task.WhenAll(tasks);
        using var stopProgress = new CancellationTokenSource();
        var progress = progressEvery > TimeSpan.Zero
            ? ProgressAsync(label, unitName, start, measureStart, measureEnd, counters, progressEvery, stopProgress.Token)
            : Task.CompletedTask;
        try
        {
            await all;
        }
        finally
        {
            await stopProgress.CancelAsync();
            await progress;
        }

        var samples = tasks.Select(t => t.Result).ToArray();
        var latencies = samples.SelectMany(s => s.Latencies).ToArray();
        Array.Sort(latencies);
        return new LoopResult(
            duration.TotalSeconds,
            samples.Sum(s => s.Units),
            samples.Sum(s => s.Operations),
            samples.Sum(s => s.Errors),
            Interlocked.Read(ref counters.Errors) - samples.Sum(s => s.Errors),
            latencies,
            await cpu);
    }

    private static async Task<WorkerSamples> WorkerAsync(
        int worker, Func<int, long, CancellationToken, Task<OpResult>> operation, long measureStart, long measureEnd, Counters counters, CancellationToken cancellationToken)
    {
        var samples = new WorkerSamples();
        for (long i = 0; !cancellationToken.IsCancellationRequested; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            if (t0 >= measureEnd)
            {
                break;
            }

            var result = await operation(worker, i, cancellationToken);
            var t1 = Stopwatch.GetTimestamp();
            var inWindow = t1 >= measureStart && t1 < measureEnd;
            if (result.Ok)
            {
                Interlocked.Add(ref counters.Units, result.Units);
                if (inWindow)
                {
                    samples.Units += result.Units;
                    samples.Operations++;
                    samples.Latencies.Add(t1 - t0);
                }
            }
            else
            {
                Interlocked.Increment(ref counters.Errors);
                if (inWindow)
                {
                    samples.Errors++;
                }
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        return samples;
    }

    private static async Task ProgressAsync(string label, string unitName, long start, long measureStart, long measureEnd, Counters counters, TimeSpan every, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(every);
        var lastUnits = 0L;
        var lastTime = start;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var now = Stopwatch.GetTimestamp();
                var units = Interlocked.Read(ref counters.Units);
                var rate = (units - lastUnits) * (double)Stopwatch.Frequency / (now - lastTime);
                var phase = now < measureStart ? "warm-up" : now < measureEnd ? "measure" : "drain";
                var elapsed = (now - start) / (double)Stopwatch.Frequency;
                var total = (measureEnd - start) / (double)Stopwatch.Frequency;
                Console.WriteLine($"  [{label} {elapsed,5:0.0}/{total:0} s {phase,-7}] {rate,10:N0} {unitName}/s   errors {Interlocked.Read(ref counters.Errors):N0}");
                lastUnits = units;
                lastTime = now;
            }
        }
        catch (OperationCanceledException)
        {
            // Run finished.
        }
    }

    private static async Task<IReadOnlyList<(string Name, double Cores)>> SampleCpuAsync(IReadOnlyList<CpuProbe> probes, long measureStart, long measureEnd, CancellationToken cancellationToken)
    {
        if (probes.Count == 0)
        {
            return [];
        }

        await Task.Delay(Until(measureStart), cancellationToken);
        var t0 = Stopwatch.GetTimestamp();
        var before = probes.Select(p => p.Read()).ToArray();
        await Task.Delay(Until(measureEnd), cancellationToken);
        var t1 = Stopwatch.GetTimestamp();
        var after = probes.Select(p => p.Read()).ToArray();
        var seconds = (t1 - t0) / (double)Stopwatch.Frequency;
        var result = new List<(string, double)>();
        for (var i = 0; i < probes.Count; i++)
        {
            if (before[i] is { } b && after[i] is { } a && seconds > 0)
            {
                result.Add((probes[i].Name, (a - b).TotalSeconds / seconds));
            }
        }

        return result;

        static TimeSpan Until(long timestamp) => TimeSpan.FromSeconds(Math.Max(0, (timestamp - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));
    }

    private sealed class Counters
    {
        public long Units;
        public long Errors;
    }

    private sealed class WorkerSamples
    {
        public long Units { get; set; }

        public long Operations { get; set; }

        public long Errors { get; set; }

        public List<long> Latencies { get; } = new(4096);
    }
}
