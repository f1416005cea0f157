using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.LoadTest;

/// <summary>
/// Memory per idle tenant (issue 22, "Scale with tenants"): hosts the server in this process with its defaults, creates
/// <c>--tenants</c> tenants with a write key each directly through the server's tenant store (creating them over the API
/// would take minutes and is not what is measured), takes the managed heap after a full compacting collection, then
/// sends each tenant one single-event request over loopback HTTP (every per-tenant structure a request touches comes
/// into being: cached key and tenant, rate-limit buckets, the sequencer's tree, the sealer's head), waits
/// <c>--duration</c> seconds with no traffic and takes the heap again. The difference divided by the tenants is what
/// an idle tenant that was once active keeps holding.
/// </summary>
internal static class TenantMemoryRun
{
    private const int Senders = 16;

    public static async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP memory per idle tenant: {string.Join(' ', args)}");
        Console.WriteLine($"  {settings.Tenants:N0} tenants, one single-event request each, then {settings.DurationSeconds} s idle; machine {Environment.ProcessorCount} cores, {Environment.Version}");
        var data = Directory.CreateTempSubdirectory("atp-loadtest-memory-");
        var adminKey = ApiKeyFormat.Generate();
        var app = await InProcessServer.StartAsync(InProcessServer.Arguments(data.FullName, adminKey), cancellationToken);
        try
        {
            var url = InProcessServer.Url(app);
            var store = app.Services.GetRequiredService<ITenantStore>();

            var creating = Stopwatch.StartNew();
            var keys = new string[settings.Tenants];
            await Parallel.ForAsync(0, settings.Tenants, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (i, ct) =>
                keys[i] = await InProcessServer.CreateTenantAsync(store, $"mem-{i}", "memory", [Scopes.EventsWrite], ct));
            Console.WriteLine($"  created {settings.Tenants:N0} tenants and keys in {creating.Elapsed.TotalSeconds:0.0} s");

            // The server's own start-up work (first sealer ticks, projector) settles before the first figure.
            await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken);
            var before = Heap();
            Console.WriteLine($"  heap before the tenants are touched: {before / 1e6:0.0} MB");

            using var http = AtpClient.CreateHttpClient(Senders);
            var body = "{\"type\":\"memory.probe\",\"occurredAt\":\"2026-12-07T12:00:00Z\",\"actor\":{\"type\":\"user\",\"id\":\"u1\"},\"action\":\"probe.touch\"}"u8.ToArray();
            var touching = Stopwatch.StartNew();
            var failures = 0;
            await Parallel.ForAsync(0, settings.Tenants, new ParallelOptions { MaxDegreeOfParallelism = Senders, CancellationToken = cancellationToken }, async (i, ct) =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(url, $"v1/tenants/mem-{i}/events"));
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", keys[i]);
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await http.SendAsync(request, ct);
                if ((int)response.StatusCode != 201)
                {
                    Interlocked.Increment(ref failures);
                }
            });
            Console.WriteLine($"  touched every tenant in {touching.Elapsed.TotalSeconds:0.0} s ({settings.Tenants / touching.Elapsed.TotalSeconds:N0} requests/s), {failures} failed");
            var active = Heap();
            Console.WriteLine($"  heap right after: {active / 1e6:0.0} MB ({(active - before) / (double)settings.Tenants:N0} B per tenant)");

            await Task.Delay(TimeSpan.FromSeconds(settings.DurationSeconds), cancellationToken);
            var idle = Heap();
            var perTenant = (idle - before) / (double)settings.Tenants;
            Console.WriteLine($"  heap after {settings.DurationSeconds} s idle: {idle / 1e6:0.0} MB ({perTenant:N0} B per tenant)");
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| tenants | heap before MB | right after MB | B/tenant | after {settings.DurationSeconds} s idle MB | B/idle tenant |"));
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {settings.Tenants:N0} | {before / 1e6:0.0} | {active / 1e6:0.0} | {(active - before) / (double)settings.Tenants:N0} | {idle / 1e6:0.0} | {perTenant:N0} |"));
            return failures == 0 ? LoadTestCommand.ExitOk : LoadTestCommand.ExitRequestErrors;
        }
        finally
        {
            await InProcessServer.StopAsync(app);
            data.Delete(recursive: true);
        }
    }

    // Twice, with finalizers in between, so objects released by finalizers (timers, handles) are gone too.
    private static long Heap()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }
}
