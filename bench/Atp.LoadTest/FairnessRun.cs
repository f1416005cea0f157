using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Server;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.LoadTest;

/// <summary>
/// Whether one tenant's flood can slow another tenant down (issue 16, finding 5). A quiet tenant writes small batches
/// and searches at a steady pace while a flooding tenant, at its limits, sends 1,000-event batches, then
/// <c>verify=true&amp;limit=1000</c> searches, from several clients. Run twice on fresh in-process servers with the
/// product's edition defaults: "requests only" lifts the work limits (events/s, bytes/s, read cost — what ATP limited
/// before them), "work limits" keeps them. The quiet tenant's p95 under each flood is compared with its p95 alone.
/// </summary>
internal static class FairnessRun
{
    private const int QuietBatch = 10;
    private const int FloodBatch = 1000;
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(100);

    // A flooding client that is refused comes back soon rather than after Retry-After: it stays at its limit.
    private static readonly TimeSpan FloodBackoff = TimeSpan.FromMilliseconds(50);

    private static readonly string[] RequestsOnly =
    [
        "--Atp:RateLimits:Default:IngestEventsPerSecond=100000000",
        "--Atp:RateLimits:Default:IngestBytesPerSecond=2147483647",
        "--Atp:RateLimits:Default:ReadCostPerSecond=10000000",
    ];

    public static async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP fairness run: {string.Join(' ', args)}");
        var duration = TimeSpan.FromSeconds(settings.DurationSeconds);
        var warmup = TimeSpan.FromSeconds(settings.WarmupSeconds);
        var floodClients = Math.Max(2, settings.Clients);
        Console.WriteLine($"  quiet tenant: one writer ({QuietBatch}-event batches) and one reader (limit=100) every {QuietPeriod.TotalMilliseconds:0} ms; flooding tenant: {floodClients} clients; {settings.DurationSeconds} s per phase after {settings.WarmupSeconds} s warm-up; machine {Environment.ProcessorCount} cores");

        var results = new List<(string Config, string Phase, Quiet Quiet, Flood Flood)>();
        foreach (var (config, extra) in new[] { ("requests only (before)", RequestsOnly), ("work limits (after)", Array.Empty<string>()) })
        {
            foreach (var (phase, quiet, flood) in await RunServerAsync(extra, floodClients, warmup, duration, cancellationToken))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {config,-24} {phase,-22} quiet write p95 {quiet.WriteP95:0.0} ms, read p95 {quiet.ReadP95:0.0} ms (errors {quiet.Errors}); flood {flood.Accepted} accepted, {flood.Refused} refused (429), {flood.Events:N0} events"));
                results.Add((config, phase, quiet, flood));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| limits | flood | quiet write p95 ms | × alone | quiet read p95 ms | × alone | flood accepted/s | flood 429/s |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => r.Config))
        {
            var alone = group.First().Quiet;
            foreach (var (config, phase, quiet, flood) in group)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {config} | {phase} | {quiet.WriteP95:0.0} | {quiet.WriteP95 / alone.WriteP95:0.00} | {quiet.ReadP95:0.0} | {quiet.ReadP95 / alone.ReadP95:0.00} | {flood.Accepted / duration.TotalSeconds:0.0} | {flood.Refused / duration.TotalSeconds:0.0} |"));
            }
        }

        return results.Any(r => r.Quiet.Errors > 0) ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
    }

    private static async Task<List<(string Phase, Quiet Quiet, Flood Flood)>> RunServerAsync(
        string[] extra, int floodClients, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var data = Directory.CreateTempSubdirectory("atp-loadtest-fairness-");
        var adminKey = ApiKeyFormat.Generate();
        var app = AtpServer.Build(
            [
                "--urls", "http://127.0.0.1:0",
                $"--Atp:DataDirectory={data.FullName}",
                $"--Atp:Bootstrap:AdminKey={adminKey}",
                "--Logging:LogLevel:Default=Warning",
                .. extra,
            ]);
        try
        {
            await AtpServer.InitializeAsync(app, cancellationToken);
            await app.StartAsync(cancellationToken);
            var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            using var http = AtpClient.CreateHttpClient(floodClients + 2);
            var quietKey = await CreateTenantAsync(http, url, adminKey, "quiet", cancellationToken);
            var floodKey = await CreateTenantAsync(http, url, adminKey, "flood", cancellationToken);

            // The quiet tenant has something to find, and the flooding tenant a full page of 1,000 to prove.
            await PostUntilAcceptedAsync(http, url, quietKey, "quiet", Batch(100, 0), cancellationToken);
            for (var i = 0; i < 3; i++)
            {
                await PostUntilAcceptedAsync(http, url, floodKey, "flood", Batch(FloodBatch, i), cancellationToken);
            }

            var (q0, f0) = await PhaseAsync(http, url, quietKey, floodKey, FloodKind.None, floodClients, warmup, duration, cancellationToken);
            var phases = new List<(string, Quiet, Flood)> { ("alone", q0, f0) };
            var (q1, f1) = await PhaseAsync(http, url, quietKey, floodKey, FloodKind.Writes, floodClients, warmup, duration, cancellationToken);
            phases.Add(("1,000-event batches", q1, f1));

            // Let the projector and the sealer catch up with the write flood, so the read phase measures reads.
            await WaitForProjectionAsync(http, url, floodKey, "flood", cancellationToken);
            var (q2, f2) = await PhaseAsync(http, url, quietKey, floodKey, FloodKind.VerifiedSearches, floodClients, warmup, duration, cancellationToken);
            phases.Add(("verify=true&limit=1000", q2, f2));
            return phases;
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
            data.Delete(recursive: true);
        }
    }

    private enum FloodKind
    {
        None,
        Writes,
        VerifiedSearches,
    }

    private static async Task<(Quiet, Flood)> PhaseAsync(
        HttpClient http, Uri url, string quietKey, string floodKey, FloodKind kind, int floodClients, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        var measureFrom = start + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var end = measureFrom + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var writes = new List<double>();
        var reads = new List<double>();
        var quietErrors = 0L;
        long accepted = 0, refused = 0, events = 0;

        async Task QuietAsync(bool write)
        {
            var next = Stopwatch.GetTimestamp();
            for (var i = 0L; Stopwatch.GetTimestamp() < end; i++)
            {
                using var request = write
                    ? Request(HttpMethod.Post, new Uri(url, "v1/tenants/quiet/events"), quietKey, Batch(QuietBatch, i))
                    : Request(HttpMethod.Get, new Uri(url, "v1/tenants/quiet/events?limit=100"), quietKey, null);
                var sent = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(request, cancellationToken);
                await response.Content.ReadAsByteArrayAsync(cancellationToken);
                var done = Stopwatch.GetTimestamp();
                if (sent >= measureFrom && done <= end)
                {
                    if (!response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref quietErrors);
                    }

                    var list = write ? writes : reads;
                    list.Add(Stopwatch.GetElapsedTime(sent, done).TotalMilliseconds);
                }

                next += (long)(QuietPeriod.TotalSeconds * Stopwatch.Frequency);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }
            }
        }

        async Task FloodAsync(int client)
        {
            for (var i = 0L; Stopwatch.GetTimestamp() < end; i++)
            {
                using var request = kind == FloodKind.Writes
                    ? Request(HttpMethod.Post, new Uri(url, "v1/tenants/flood/events"), floodKey, Batch(FloodBatch, (client * 1_000_000) + i))
                    : Request(HttpMethod.Get, new Uri(url, "v1/tenants/flood/events?verify=true&limit=1000"), floodKey, null);
                using var response = await http.SendAsync(request, cancellationToken);
                await response.Content.ReadAsByteArrayAsync(cancellationToken);
                var counted = Stopwatch.GetTimestamp() is var now && now >= measureFrom && now <= end;
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    if (counted)
                    {
                        Interlocked.Increment(ref refused);
                    }

                    await Task.Delay(FloodBackoff, cancellationToken);
                }
                else if (counted && response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref accepted);
                    Interlocked.Add(ref events, kind == FloodKind.Writes ? FloodBatch : 0);
                }
            }
        }

        var tasks = new List<Task> { QuietAsync(write: true), QuietAsync(write: false) };
        if (kind != FloodKind.None)
        {
            tasks.AddRange(Enumerable.Range(0, floodClients).Select(FloodAsync));
        }

        await Task.WhenAll(tasks);
        return (new Quiet(P95(writes), P95(reads), quietErrors), new Flood(accepted, refused, events));
    }

    private static double P95(List<double> latencies)
    {
        if (latencies.Count == 0)
        {
            return double.NaN;
        }

        latencies.Sort();
        return latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(latencies.Count * 0.95) - 1)];
    }

    private static async Task<string> CreateTenantAsync(HttpClient http, Uri url, string adminKey, string id, CancellationToken cancellationToken)
    {
        using (var create = Request(HttpMethod.Post, new Uri(url, "v1/tenants"), adminKey, JsonSerializer.Serialize(new { id, name = id })))
        {
            using var response = await http.SendAsync(create, cancellationToken);
            response.EnsureSuccessStatusCode();
        }

        using var key = Request(HttpMethod.Post, new Uri(url, $"v1/tenants/{id}/api-keys"), adminKey, JsonSerializer.Serialize(new { name = "fairness", scopes = new[] { "events:write", "events:read" } }));
        using var created = await http.SendAsync(key, cancellationToken);
        created.EnsureSuccessStatusCode();
        return (await created.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("key").GetString()!;
    }

    private static async Task PostUntilAcceptedAsync(HttpClient http, Uri url, string key, string tenant, string body, CancellationToken cancellationToken)
    {
        while (true)
        {
            using var request = Request(HttpMethod.Post, new Uri(url, $"v1/tenants/{tenant}/events"), key, body);
            using var response = await http.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.TooManyRequests)
            {
                response.EnsureSuccessStatusCode();
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(int.Parse(response.Headers.GetValues("Retry-After").First(), CultureInfo.InvariantCulture)), cancellationToken);
        }
    }

    private static async Task WaitForProjectionAsync(HttpClient http, Uri url, string key, string tenant, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (120 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            using var request = Request(HttpMethod.Get, new Uri(url, $"v1/tenants/{tenant}/projection"), key, null);
            using var response = await http.SendAsync(request, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                var status = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
                if (status.GetProperty("projectedSize").GetUInt64() == status.GetProperty("treeSize").GetUInt64())
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                    return;
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }

        throw new TimeoutException($"The projection of {tenant} did not catch up within 120 s.");
    }

    private static HttpRequestMessage Request(HttpMethod method, Uri uri, string key, string? json)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return request;
    }

    // Events of about 400 bytes each, as a customer's audit events might be.
    private static string Batch(int count, long seed)
    {
        var builder = new StringBuilder("{\"events\":[");
        for (var i = 0; i < count; i++)
        {
            builder.Append(i == 0 ? "" : ",").Append(CultureInfo.InvariantCulture,
                $"{{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\",\"actor\":{{\"type\":\"user\",\"id\":\"user-{seed}-{i}\"}},\"action\":\"document.update\",\"targets\":[{{\"type\":\"document\",\"id\":\"doc-{i}\"}}],\"outcome\":\"success\",\"data\":{{\"note\":\"{new string('x', 200)}\"}}}}");
        }

        return builder.Append("]}").ToString();
    }

    private sealed record Quiet(double WriteP95, double ReadP95, long Errors);

    private sealed record Flood(long Accepted, long Refused, long Events);
}
