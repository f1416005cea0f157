using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.LoadTest;

/// <summary>
/// What a feature costs ingest: the same workload against a child server with the feature off and on, a fresh server
/// and store per phase, four rounds in alternating order so drift of the machine favours neither.
/// <list type="bullet">
/// <item>Telemetry: OpenTelemetry left out (<c>Atp:Telemetry:Enabled=false</c>) against on and scraped
/// (<c>Atp:Telemetry:Prometheus=true</c>, /metrics read every 5 s — three times as often as Prometheus' default).</item>
/// <item>Schemas: no schema registered against <see cref="EventGenerator.DataSchema"/> registered for every event type
/// the generator writes, so every event's data is validated at ingest.</item>
/// <item>Sealing: the envelope's personal fields (actor name, IP, user agent) stored in clear against sealed at ingest
/// (<c>Atp:Classification:SealEnvelopeFields=true</c>, docs/classification.md).</item>
/// </list>
/// </summary>
internal sealed class OverheadRun
{
    private const int Rounds = 4;
    private static readonly TimeSpan ScrapeEvery = TimeSpan.FromSeconds(5);

    private OverheadRun(string feature, string offLabel, string onLabel)
    {
        Feature = feature;
        OffLabel = offLabel;
        OnLabel = onLabel;
    }

    private string Feature { get; }

    private string OffLabel { get; }

    private string OnLabel { get; }

    private bool Telemetry => Feature == "telemetry";

    private bool Schemas => Feature == "schemas";

    public static OverheadRun ForTelemetry() => new("telemetry", "off (Atp:Telemetry:Enabled=false)", "on (OpenTelemetry, Prometheus scraped every 5 s)");

    public static OverheadRun ForSealing() => new("sealing", "off (personal fields stored in clear)", "on (actor name, IP and user agent sealed: Atp:Classification:SealEnvelopeFields=true)");

    public static OverheadRun ForSchemas() => new("schemas", "off (no schema registered)", "on (every event type's data validated against a registered schema)");

    public async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP {Feature}-overhead run: {string.Join(' ', args)}");
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
                    $"  round {round} {Feature} {(on ? "on " : "off")}: {result.UnitsPerSecond,9:N0} events/s, p99 {result.PercentileMs(99):0.0} ms, server CPU {ServerCpuPerEvent(result):0.0} µs/event, {scrapes} scrapes, errors {result.Errors}"));
            }
        }

        var off = results[false].Average(r => r.Result.UnitsPerSecond);
        var offCpu = results[false].Average(r => ServerCpuPerEvent(r.Result));
        Console.WriteLine();
        Console.WriteLine($"| {Feature} | events/s (mean of {Rounds}) | throughput cost vs off | server CPU µs/event (mean) | CPU cost vs off | p99 ms (mean) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var (on, runs) in results)
        {
            var rate = runs.Average(r => r.Result.UnitsPerSecond);
            var cpu = runs.Average(r => ServerCpuPerEvent(r.Result));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(on ? OnLabel : OffLabel)} | {rate:N0} | {(on ? $"{(off - rate) / off * 100:+0.0;-0.0} %" : "—")} | {cpu:0.0} | {(on ? $"{(cpu - offCpu) / offCpu * 100:+0.0;-0.0} %" : "—")} | {runs.Average(r => r.Result.PercentileMs(99)):0.0} |"));
        }

        return problems > 0 ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
    }

    private async Task<(LoopResult Result, long Scrapes, int Problems)> PhaseAsync(LoadTestSettings settings, Workload workload, HttpClient http, bool on, CancellationToken cancellationToken)
    {
        var environment = Telemetry
            ? on
                ? new Dictionary<string, string> { ["Atp__Telemetry__Prometheus"] = "true" }
                : new Dictionary<string, string> { ["Atp__Telemetry__Enabled"] = "false" }
            : !Schemas && on ? new Dictionary<string, string> { ["Atp__Classification__SealEnvelopeFields"] = "true" } : [];
        var server = await ServerProcess.StartAsync(settings.ServerDll, environment, http, cancellationToken);
        await using (server.ConfigureAwait(false))
        {
            var client = new AtpClient(http, server.Url);
            var tenants = await client.CreateTenantsAsync(server.AdminKey, settings.Tenants, cancellationToken);
            if (on && Schemas)
            {
                await RegisterSchemasAsync(http, server.Url, server.AdminKey, tenants, cancellationToken);
            }

            using var stopScraping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var scrapes = 0L;
            var scraper = on && Telemetry ? ScrapeAsync(http, new Uri(server.Url, "/metrics"), () => Interlocked.Increment(ref scrapes), stopScraping.Token) : Task.CompletedTask;
            var result = await ClosedLoop.RunAsync(
                on ? "on" : "off",
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

    private static async Task RegisterSchemasAsync(HttpClient http, Uri server, string adminKey, LoadTenant[] tenants, CancellationToken cancellationToken)
    {
        using var schema = JsonDocument.Parse(EventGenerator.DataSchema);
        foreach (var tenant in tenants)
        {
            foreach (var type in EventGenerator.EventTypes)
            {
                using var request = new HttpRequestMessage(HttpMethod.Put, new Uri(server, $"v1/tenants/{tenant.Id}/schemas/{type}"));
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
                request.Content = JsonContent.Create(new { schema = schema.RootElement });
                using var response = await http.SendAsync(request, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"PUT schema {type} for {tenant.Id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
                }
            }
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
