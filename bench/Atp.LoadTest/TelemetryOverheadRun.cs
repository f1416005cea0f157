using System.Globalization;

namespace Atp.LoadTest;

/// <summary>
/// What telemetry costs ingest: the same workload against a child server with OpenTelemetry left out
/// (<c>Atp:Telemetry:Enabled=false</c>) and with it on and scraped (<c>Atp:Telemetry:Prometheus=true</c>, /metrics read
/// every 5 s — three times as often as Prometheus' default), a fresh server and store per phase, four rounds in
/// alternating order so drift of the machine favours neither.
/// </summary>
internal static class TelemetryOverheadRun
{
    private const int Rounds = 4;
    private static readonly TimeSpan ScrapeEvery = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP telemetry-overhead run: {string.Join(' ', args)}");
        Console.WriteLine($"  {settings.Clients} clients × batch {settings.Batch}, {settings.Tenants} tenants, {settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s per phase, machine {Environment.ProcessorCount} cores");
        var workload = Workload.Create(settings.Tenants, settings.Batch, settings.EventBytes);
        using var http = AtpClient.CreateHttpClient(settings.Clients);
        var results = new Dictionary<bool, List<(LoopResult Result, long Scrapes)>> { [false] = [], [true] = [] };
        var problems = 0;
        for (var round = 1; round <= Rounds; round++)
        {
            bool[] order = round % 2 == 1 ? [false, true] : [true, false];
            foreach (var on in order)
            {
                var (result, scrapes, failed) = await PhaseAsync(settings, workload, http, on, cancellationToken);
                problems += failed;
                results[on].Add((result, scrapes));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round} telemetry {(on ? "on " : "off")}: {result.UnitsPerSecond,9:N0} events/s, p99 {result.PercentileMs(99):0.0} ms, server CPU {ServerCpuPerEvent(result):0.0} µs/event, {scrapes} scrapes, errors {result.Errors}"));
            }
        }

        var off = results[false].Average(r => r.Result.UnitsPerSecond);
        var offCpu = results[false].Average(r => ServerCpuPerEvent(r.Result));
        Console.WriteLine();
        Console.WriteLine($"| telemetry | events/s (mean of {Rounds}) | throughput cost vs off | server CPU µs/event (mean) | CPU cost vs off | p99 ms (mean) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var (on, runs) in results)
        {
            var rate = runs.Average(r => r.Result.UnitsPerSecond);
            var cpu = runs.Average(r => ServerCpuPerEvent(r.Result));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(on ? "on (OpenTelemetry, Prometheus scraped every 5 s)" : "off (Atp:Telemetry:Enabled=false)")} | {rate:N0} | {(on ? $"{(off - rate) / off * 100:+0.0;-0.0} %" : "—")} | {cpu:0.0} | {(on ? $"{(cpu - offCpu) / offCpu * 100:+0.0;-0.0} %" : "—")} | {runs.Average(r => r.Result.PercentileMs(99)):0.0} |"));
        }

        return problems > 0 ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
    }

    private static async Task<(LoopResult Result, long Scrapes, int Problems)> PhaseAsync(LoadTestSettings settings, Workload workload, HttpClient http, bool telemetry, CancellationToken cancellationToken)
    {
        var environment = telemetry
            ? new Dictionary<string, string> { ["Atp__Telemetry__Prometheus"] = "true" }
            : new Dictionary<string, string> { ["Atp__Telemetry__Enabled"] = "false" };
        var server = await ServerProcess.StartAsync(settings.ServerDll, environment, http, cancellationToken);
        await using (server.ConfigureAwait(false))
        {
            var client = new AtpClient(http, server.Url);
            var tenants = await client.CreateTenantsAsync(server.AdminKey, settings.Tenants, cancellationToken);
            using var stopScraping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var scrapes = 0L;
            var scraper = telemetry ? ScrapeAsync(http, new Uri(server.Url, "/metrics"), () => Interlocked.Increment(ref scrapes), stopScraping.Token) : Task.CompletedTask;
            var result = await ClosedLoop.RunAsync(
                telemetry ? "on" : "off",
                settings.Clients,
                TimeSpan.FromSeconds(settings.WarmupSeconds),
                TimeSpan.FromSeconds(settings.DurationSeconds),
                TimeSpan.Zero,
                "events",
                (worker, iteration, ct) =>
                {
                    var tenant = worker % tenants.Length;
                    var body = workload.Tenants[tenant].BodyFor(worker, iteration);
                    return client.SendAsync(tenants[tenant], body, workload.Batch, checkReceipts: iteration == 0, ct);
                },
                [new CpuProbe("server", server.CpuTime), new CpuProbe("whole machine", MachineCpu.BusyTime)],
                cancellationToken);
            await stopScraping.CancelAsync();
            await scraper;
            return (result, Interlocked.Read(ref scrapes), client.ProblemCount);
        }
    }

    private static async Task ScrapeAsync(HttpClient http, Uri metrics, Action scraped, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ScrapeEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                using var response = await http.GetAsync(metrics, cancellationToken);
                response.EnsureSuccessStatusCode();
                _ = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                scraped();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The phase is over.
        }
    }

    private static double ServerCpuPerEvent(LoopResult result) =>
        result.Cpu.FirstOrDefault(c => c.Name == "server").Cores / result.UnitsPerSecond * 1_000_000;
}
