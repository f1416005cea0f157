using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Atp.LoadTest;

/// <summary>A server build and runtime settings to start: a label, its Atp.Server.dll (null: the build output) and environment.</summary>
internal sealed record StartupVariant(string Label, string? ServerDll, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>Parses <c>LABEL=PATH[;NAME=VALUE…]</c>; an empty PATH means the build output of src/Atp.Server.</summary>
    public static (StartupVariant? Variant, string? Error) Parse(string text)
    {
        var parts = text.Split(';');
        var head = parts[0].Split('=', 2);
        if (head.Length != 2 || head[0].Length == 0)
        {
            return (null, $"--variant {text}: LABEL=PATH[;NAME=VALUE...], e.g. r2r=/tmp/atp-r2r/Atp.Server.dll or tc=;DOTNET_TieredPGO=0.");
        }

        var dll = head[1].Length == 0 ? null : head[1];
        if (dll is not null && !File.Exists(dll))
        {
            return (null, $"--variant {head[0]}: no file {dll}.");
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in parts.Skip(1))
        {
            var nameValue = pair.Split('=', 2);
            if (nameValue.Length != 2 || nameValue[0].Length == 0)
            {
                return (null, $"--variant {head[0]}: {pair} is not NAME=VALUE.");
            }

            environment[nameValue[0]] = nameValue[1];
        }

        return (new StartupVariant(head[0], dll, environment), null);
    }
}

/// <summary>
/// Start-up (issue 22, "steady throughput within 3 s of start"): for each repetition and each variant, a child server on
/// a fresh data directory (embedded engine, search on: the README's first command's configuration) and then, after a
/// clean stop, a second server on the directory the first one filled (start-up work such as recovery and the projector's
/// reconciliation grows with the data). Time zero is the moment the process is started. The clients (batch 100 × 8 by
/// default) send from then on and each event is counted in the 250 ms bucket in which its request completed. On a fresh
/// store the tenants and keys can only be created through the API once /readyz answers; on a restart the clients reuse
/// the first run's keys and send from time zero. Requests that fail before the first 201 are the server not being up
/// yet, not errors.
/// </summary>
internal static class StartupRun
{
    private const int BucketsPerSecond = 4;
    private const int SteadyFromSecond = 10;
    private const int SteadyToSecond = 20;
    private const double SteadyShare = 0.9;
    private const double TargetSeconds = 3;
    private static readonly TimeSpan ProbeEvery = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan RetryEvery = TimeSpan.FromMilliseconds(25);

    public static async Task<int> RunAsync(LoadTestSettings settings, IReadOnlyList<StartupVariant> variants, int repeat, string[] args, CancellationToken cancellationToken)
    {
        var commandLine = LoadTestRun.CommandLine(args);
        Console.WriteLine($"ATP start-up run: {commandLine}");
        Console.WriteLine($"  {settings.Clients} clients × batch {settings.Batch}, {settings.Tenants} tenants, {settings.DurationSeconds} s from process start per run, {repeat} repetitions of {string.Join(", ", variants.Select(v => v.Label))} (fresh store, then restart on it); machine {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}");
        var workload = Workload.Create(settings.Tenants, settings.Batch, settings.EventBytes);
        using var http = AtpClient.CreateHttpClient(settings.Clients);
        var samples = new List<StartupSample>();
        for (var repetition = 1; repetition <= repeat; repetition++)
        {
            // Variants in turn within each repetition, rotating the order, so drift of the shared machine favours none.
            for (var v = 0; v < variants.Count; v++)
            {
                var variant = variants[(v + repetition - 1) % variants.Count];
                var data = Directory.CreateTempSubdirectory("atp-loadtest-startup-");
                try
                {
                    var fresh = await RunOnceAsync(settings, variant, workload, http, data, tenants: null, repetition, heldEvents: 0, cancellationToken);
                    samples.Add(fresh);
                    Report(fresh);
                    var restart = await RunOnceAsync(settings, variant, workload, http, data, fresh.Tenants, repetition, fresh.Events, cancellationToken);
                    samples.Add(restart);
                    Report(restart);
                }
                finally
                {
                    ServerProcess.TryDelete(data);
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine(Markdown(settings, variants, repeat, commandLine, samples));
        return samples.Any(s => s.Errors > 0) ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
    }

    private static async Task<StartupSample> RunOnceAsync(
        LoadTestSettings settings, StartupVariant variant, Workload workload, HttpClient http, DirectoryInfo data, LoadTenant[]? tenants, int repetition, long heldEvents, CancellationToken cancellationToken)
    {
        var phase = tenants is null ? "fresh" : "restart";
        var bucketTicks = Stopwatch.Frequency / BucketsPerSecond;
        var buckets = new long[settings.DurationSeconds * BucketsPerSecond];
        var server = ServerProcess.Launch(variant.ServerDll, variant.Environment, data, adminKey: null);
        var machineAtStart = MachineCpu.BusyTime();
        var ownAtStart = Environment.CpuUsage.TotalTime;
        await using (server.ConfigureAwait(false))
        {
            var t0 = server.StartedAt;
            var end = t0 + (settings.DurationSeconds * Stopwatch.Frequency);
            var ready = Task.Run(async () =>
            {
                await server.WaitUntilReadyAsync(http, ProbeEvery, cancellationToken);
                return (At: Stopwatch.GetTimestamp(), Cpu: server.CpuTime()?.TotalSeconds);
            }, cancellationToken);
            var tenantsReady = tenants is null
                ? Task.Run(async () =>
                {
                    _ = await ready;
                    var created = await new AtpClient(http, server.Url).CreateTenantsAsync(server.AdminKey, settings.Tenants, cancellationToken);
                    return (created, (long?)Stopwatch.GetTimestamp());
                }, cancellationToken)
                : Task.FromResult<(LoadTenant[], long?)>(([.. tenants.Select(t => t with { EventsUri = new Uri(server.Url, $"v1/tenants/{t.Id}/events") })], null));

            // The server's CPU time at every bucket boundary: CPU per event does not stretch when other processes take
            // the cores, so it shows the warm-up (JIT, caches) where the event rate shows mostly the machine's load.
            var serverCpu = new double?[buckets.Length + 1];
            serverCpu[0] = 0;
            var cpuSampler = Task.Run(async () =>
            {
                for (var k = 1; k < serverCpu.Length; k++)
                {
                    await Task.Delay(Remaining(t0 + (k * bucketTicks)), cancellationToken);
                    serverCpu[k] = server.CpuTime()?.TotalSeconds;
                }
            }, cancellationToken);

            // A failure before the server's first 201 is the server not being up yet (connection refused, 503): those go
            // to a client whose problems are not reported, and the request is retried shortly.
            var starting = new AtpClient(http, server.Url, announceFirstProblem: false);
            var client = new AtpClient(http, server.Url);
            var firstEvent = 0L;
            var errors = 0L;
            var stored = 0L;
            var workers = Enumerable.Range(0, settings.Clients).Select(worker => Task.Run(async () =>
            {
                var (targets, _) = await tenantsReady;
                var tenant = worker % targets.Length;
                var receiptsChecked = false;
                for (long i = 0; Stopwatch.GetTimestamp() < end; i++)
                {
                    var up = Interlocked.Read(ref firstEvent) != 0;
                    var body = workload.Tenants[tenant].BodyFor(worker, i);
                    var result = await (up ? client : starting).SendAsync(targets[tenant], body, workload.Batch, checkReceipts: !receiptsChecked, cancellationToken);
                    var completed = Stopwatch.GetTimestamp();
                    if (result.Ok)
                    {
                        receiptsChecked = true;
                        Interlocked.Add(ref stored, result.Units);
                        Interlocked.CompareExchange(ref firstEvent, completed, 0);
                        var bucket = (completed - t0) / bucketTicks;
                        if (bucket < buckets.Length)
                        {
                            Interlocked.Add(ref buckets[bucket], result.Units);
                        }
                    }
                    else if (up)
                    {
                        Interlocked.Increment(ref errors);
                    }
                    else
                    {
                        await Task.Delay(RetryEvery, cancellationToken);
                    }
                }
            }, cancellationToken)).ToArray();

            await Task.WhenAll(workers);
            var (readyAt, cpuAtReady) = await ready;
            var (runTenants, tenantsAt) = await tenantsReady;
            await cpuSampler;

            // What other processes took of the machine over the run: on a shared machine, the figures' caveat.
            var otherCores = MachineCpu.BusyTime() - machineAtStart - (Environment.CpuUsage.TotalTime - ownAtStart) - server.CpuTime() is { } other
                ? other.TotalSeconds / Stopwatch.GetElapsedTime(t0).TotalSeconds
                : (double?)null;
            if (server.HasExited)
            {
                throw new InvalidOperationException($"The server exited during the {phase} run; its output:\n{server.LogTail(30)}");
            }

            await server.StopAsync(cancellationToken);
            // With no 201 at all, the failures while starting are the only clue.
            foreach (var problem in firstEvent == 0 ? starting.Problems : client.Problems)
            {
                Console.WriteLine($"  failed request: {problem}");
            }

            var events = Interlocked.Read(ref stored) + heldEvents;
            return new StartupSample(
                variant.Label, phase, repetition, heldEvents, events, runTenants,
                Ms(readyAt - t0), firstEvent == 0 ? null : Ms(firstEvent - t0), tenantsAt is { } at ? Ms(at - t0) : null,
                cpuAtReady, serverCpu, otherCores, buckets, Interlocked.Read(ref errors));
        }
    }

    private static TimeSpan Remaining(long timestamp)
    {
        var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp);
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static void Report(StartupSample s)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {s.Variant} #{s.Repetition} {s.Phase,-7} (store held {s.HeldEvents:N0} events): ready {s.ReadyMs:0} ms, first 201 {Format(s.FirstEventMs, "0")} ms{(s.TenantsMs is { } t ? $" (tenants and keys created by {t:0} ms)" : "")}, steady {s.SteadyPerSecond:N0} events/s, ≥ 90 % for a second from {Format(s.SteadyAfterSeconds, "0.00")} s (every 250 ms bucket: {Format(s.EveryBucketSteadyAfterSeconds, "0.00")} s), first 3 s {s.ShareOfSteadyInTarget * 100:0} % of steady; server CPU at ready {Format(s.CpuSecondsAtReady, "0.00")} s, by 3 s {Format(s.CpuSecondsAtTarget, "0.00")} s, µs/event in the first second of 201s {Format(s.FirstSecondCpuPerEvent, "0")} against {Format(s.SteadyCpuPerEvent, "0")} steady, within 110 % from {Format(s.CpuWarmAfterSeconds, "0.00")} s; other processes {Format(s.OtherCores, "0.00")} cores, errors {s.Errors}"));
        Console.WriteLine($"    events/s per 250 ms (k): {Series(s)}");
        Console.WriteLine($"    server CPU µs/event per 250 ms: {CpuSeries(s)}");
    }

    private static string CpuSeries(StartupSample s) =>
        string.Join(' ', Enumerable.Range(0, s.Buckets.Length).Select(i => s.Buckets[i] > 0 && s.ServerCpu[i + 1] is { } end && s.ServerCpu[i] is { } start
            ? ((end - start) / s.Buckets[i] * 1_000_000).ToString("0", CultureInfo.InvariantCulture)
            : "—"));

    private static string Series(StartupSample s) =>
        string.Join(' ', s.Buckets.Select(b => (b * BucketsPerSecond / 1000.0).ToString("0.#", CultureInfo.InvariantCulture)));

    private static string Format(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "—";

    private static double? Median(IEnumerable<double?> values)
    {
        var known = values.OfType<double>().Order().ToArray();
        return known.Length == 0 ? null : known.Length % 2 == 1 ? known[known.Length / 2] : (known[(known.Length / 2) - 1] + known[known.Length / 2]) / 2;
    }

    private static string Markdown(LoadTestSettings settings, IReadOnlyList<StartupVariant> variants, int repeat, string commandLine, List<StartupSample> samples)
    {
        var md = new StringBuilder();
        md.AppendLine("```markdown");
        md.AppendLine(CultureInfo.InvariantCulture, $"#### ATP start-up, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Command: `{commandLine}`");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}; child server, embedded engine, search on; load generator on the same machine. {settings.Clients} clients × batch {settings.Batch}, {settings.Tenants} tenants, event data ≈ {settings.EventBytes} B. Time zero is the process start; steady = median of seconds {SteadyFromSecond}–{SteadyToSecond}. Medians of {repeat} repetitions.");
        md.AppendLine();
        md.AppendLine("| variant | store | ready ms | first 201 ms | steady events/s | ≥ 90 % of steady for 1 s, from s (each run) | same, every 250 ms bucket | first 3 s, share of steady | server CPU s at ready | server CPU s by 3 s | CPU µs/event, first second of 201s | steady | within 110 % from s | other processes, cores | errors |");
        md.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var variant in variants)
        {
            foreach (var phase in new[] { "fresh", "restart" })
            {
                var runs = samples.Where(s => s.Variant == variant.Label && s.Phase == phase).ToList();
                var held = phase == "fresh" ? "fresh" : $"restart ({Median(runs.Select(r => (double?)r.HeldEvents)):N0} events)";
                md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {variant.Label} | {held} | {Format(Median(runs.Select(r => (double?)r.ReadyMs)), "0")} | {Format(Median(runs.Select(r => r.FirstEventMs)), "0")} | {Median(runs.Select(r => (double?)r.SteadyPerSecond)):N0} | {Format(Median(runs.Select(r => r.SteadyAfterSeconds)), "0.00")} ({string.Join(" / ", runs.Select(r => Format(r.SteadyAfterSeconds, "0.00")))}) | {Format(Median(runs.Select(r => r.EveryBucketSteadyAfterSeconds)), "0.00")} | {Median(runs.Select(r => (double?)r.ShareOfSteadyInTarget)) * 100:0} % | {Format(Median(runs.Select(r => r.CpuSecondsAtReady)), "0.00")} | {Format(Median(runs.Select(r => r.CpuSecondsAtTarget)), "0.00")} | {Format(Median(runs.Select(r => r.FirstSecondCpuPerEvent)), "0")} | {Format(Median(runs.Select(r => r.SteadyCpuPerEvent)), "0")} | {Format(Median(runs.Select(r => r.CpuWarmAfterSeconds)), "0.00")} | {Format(Median(runs.Select(r => r.OtherCores)), "0.00")} | {runs.Sum(r => r.Errors)} |"));
            }
        }

        md.AppendLine();
        md.AppendLine("Events/s per 250 ms (thousands), first repetition:");
        md.AppendLine();
        foreach (var s in samples.Where(s => s.Repetition == 1))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- {s.Variant} {s.Phase}: {Series(s)}");
            md.AppendLine(CultureInfo.InvariantCulture, $"  server CPU µs/event: {CpuSeries(s)}");
        }

        md.Append("```");
        return md.ToString();
    }

    /// <summary>One start-up run: its timings from process start and the events per 250 ms bucket; Events is what the store holds after it.</summary>
    private sealed record StartupSample(
        string Variant,
        string Phase,
        int Repetition,
        long HeldEvents,
        long Events,
        LoadTenant[] Tenants,
        double ReadyMs,
        double? FirstEventMs,
        double? TenantsMs,
        double? CpuSecondsAtReady,
        double?[] ServerCpu,
        double? OtherCores,
        long[] Buckets,
        long Errors)
    {
        /// <summary>The median of the per-second rates of seconds 10–20, when the start-up is long over.</summary>
        public double SteadyPerSecond => Median(
            Enumerable.Range(SteadyFromSecond, Math.Max(0, Math.Min(SteadyToSecond, Buckets.Length / BucketsPerSecond) - SteadyFromSecond))
                .Select(second => (double?)Buckets.Skip(second * BucketsPerSecond).Take(BucketsPerSecond).Sum())) ?? 0;

        /// <summary>
        /// The start of the first whole second in which every 250 ms bucket ran at ≥ 90 % of the steady rate: strict, as
        /// a second's mean would let one fast bucket hide a stall (on a shared machine it is late by the noise).
        /// </summary>
        public double? EveryBucketSteadyAfterSeconds => FirstSecond((window, threshold) => window.All(b => b >= threshold / BucketsPerSecond));

        /// <summary>The start of the first whole second (sliding by 250 ms) that carried ≥ 90 % of the steady rate.</summary>
        public double? SteadyAfterSeconds => FirstSecond((window, threshold) => window.Sum() >= threshold);

        private double? FirstSecond(Func<long[], double, bool> holds)
        {
            var steady = SteadyPerSecond;
            for (var i = 0; steady > 0 && i + BucketsPerSecond <= Buckets.Length; i++)
            {
                if (holds(Buckets[i..(i + BucketsPerSecond)], SteadyShare * steady))
                {
                    return (double)i / BucketsPerSecond;
                }
            }

            return null;
        }

        /// <summary>The server's CPU seconds at 3 s from start.</summary>
        public double? CpuSecondsAtTarget => ServerCpu[(int)(TargetSeconds * BucketsPerSecond)];

        /// <summary>Server CPU µs per event over seconds 10–20.</summary>
        public double? SteadyCpuPerEvent => CpuPerEvent(SteadyFromSecond * BucketsPerSecond, Math.Min(SteadyToSecond * BucketsPerSecond, Buckets.Length));

        /// <summary>
        /// The start of the first whole second (sliding by 250 ms) in which the server spent at most 110 % of its steady
        /// CPU per event: the warm-up as the server's own cost, whatever share of the cores it got.
        /// </summary>
        public double? CpuWarmAfterSeconds
        {
            get
            {
                if (SteadyCpuPerEvent is not { } steady)
                {
                    return null;
                }

                for (var i = 0; i + BucketsPerSecond <= Buckets.Length; i++)
                {
                    if (CpuPerEvent(i, i + BucketsPerSecond) is { } cost && cost <= 1.1 * steady)
                    {
                        return (double)i / BucketsPerSecond;
                    }
                }

                return null;
            }
        }

        /// <summary>Server CPU µs per event in the first second after the first 201.</summary>
        public double? FirstSecondCpuPerEvent
        {
            get
            {
                var first = Array.FindIndex(Buckets, b => b > 0);
                return first < 0 ? null : CpuPerEvent(first, Math.Min(first + BucketsPerSecond, Buckets.Length));
            }
        }

        private double? CpuPerEvent(int fromBucket, int toBucket)
        {
            var events = Buckets[fromBucket..toBucket].Sum();
            return events > 0 && ServerCpu[toBucket] is { } end && ServerCpu[fromBucket] is { } start ? (end - start) / events * 1_000_000 : null;
        }

        /// <summary>Events in the first 3 s against what the steady rate would have carried in them.</summary>
        public double ShareOfSteadyInTarget =>
            SteadyPerSecond > 0 ? Buckets.Take((int)(TargetSeconds * BucketsPerSecond)).Sum() / (SteadyPerSecond * TargetSeconds) : 0;
    }
}
