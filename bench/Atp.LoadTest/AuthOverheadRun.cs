using System.Diagnostics;
using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Atp.Core.Keys;
using Atp.Server;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atp.LoadTest;

/// <summary>
/// What authentication costs end to end: one in-process server, the same workload three ways — no authentication
/// (a bench-only scheme trusts a header naming the tenant; everything after authentication still runs), bearer API
/// keys, RFC 9421 signed requests — in alternating phases, four rounds in alternating order, so drift of the machine hits all three alike.
/// </summary>
internal static class AuthOverheadRun
{
    private const string TrustScheme = "BenchTrust";
    private const int Rounds = 4;

    public static async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP auth-overhead run: {string.Join(' ', args)}");
        Console.WriteLine($"  {settings.Clients} clients × batch {settings.Batch}, {settings.Tenants} tenants, {settings.DurationSeconds} s per phase, machine {Environment.ProcessorCount} cores");
        var workload = Workload.Create(settings.Tenants, settings.Batch, settings.EventBytes);
        var data = Directory.CreateTempSubdirectory("atp-loadtest-auth-");
        var adminKey = ApiKeyFormat.Generate();
        var app = AtpServer.Build(
            [
                "--urls", "http://127.0.0.1:0",
                $"--Atp:DataDirectory={data.FullName}",
                $"--Atp:Bootstrap:AdminKey={adminKey}",
                "--Atp:RateLimits:AnonymousPerIpPerSecond=10000000",
                "--Logging:LogLevel:Default=Warning",
            ],
            builder =>
            {
                builder.Services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, TrustedTenantHandler>(TrustScheme, null);
                builder.Services.PostConfigure<PolicySchemeOptions>("Atp", options =>
                {
                    var product = options.ForwardDefaultSelector;
                    options.ForwardDefaultSelector = context =>
                        context.Request.Headers.ContainsKey(AtpClient.TrustedTenantHeader) ? TrustScheme : product?.Invoke(context);
                });
            });
        try
        {
            await AtpServer.InitializeAsync(app, cancellationToken);
            await app.StartAsync(cancellationToken);
            var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            using var http = AtpClient.CreateHttpClient(settings.Clients);
            var client = new AtpClient(http, url);
            var tenants = await client.CreateTenantsAsync(adminKey, settings.Tenants, cancellationToken);
            var probes = new List<CpuProbe> { new("process", () => Environment.CpuUsage.TotalTime), new("whole machine", MachineCpu.BusyTime) };

            Task<LoopResult> Phase(AuthMode mode, TimeSpan warmup, TimeSpan duration) => ClosedLoop.RunAsync(
                mode.ToString().ToLowerInvariant(), settings.Clients, warmup, duration, TimeSpan.Zero, "events",
                (worker, iteration, ct) =>
                {
                    var tenant = worker % tenants.Length;
                    var body = workload.Tenants[tenant].BodyFor(worker, iteration);
                    return client.SendAsync(tenants[tenant], body, workload.Batch, checkReceipts: iteration == 0, ct, mode);
                },
                probes,
                cancellationToken);

            Console.WriteLine($"  warm-up: {settings.WarmupSeconds} s of bearer-key load");
            await Phase(AuthMode.Bearer, TimeSpan.FromSeconds(settings.WarmupSeconds), TimeSpan.FromSeconds(1));
            var results = new Dictionary<AuthMode, List<LoopResult>> { [AuthMode.None] = [], [AuthMode.Bearer] = [], [AuthMode.Signed] = [] };
            for (var round = 1; round <= Rounds; round++)
            {
                // Odd rounds run none → bearer → signed, even rounds the reverse, so drift of the machine favours no mode.
                AuthMode[] order = round % 2 == 1 ? [AuthMode.None, AuthMode.Bearer, AuthMode.Signed] : [AuthMode.Signed, AuthMode.Bearer, AuthMode.None];
                foreach (var mode in order)
                {
                    var result = await Phase(mode, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(settings.DurationSeconds));
                    results[mode].Add(result);
                    Console.WriteLine($"  round {round} {mode,-6}: {result.UnitsPerSecond,9:N0} events/s, p50 {result.PercentileMs(50):0.0} ms, p99 {result.PercentileMs(99):0.0} ms, process CPU {CpuPerEvent(result):0.0} µs/event, errors {result.Errors}");
                }
            }

            if (client.ProblemCount > 0)
            {
                Console.WriteLine($"  failed requests: {client.ProblemCount}; first: {client.Problems[0]}");
            }

            // Throughput on a shared machine swings with its neighbours; CPU per event (server and load generator in
            // this one process) does much less, so both are reported.
            var none = results[AuthMode.None].Average(r => r.UnitsPerSecond);
            var noneCpu = results[AuthMode.None].Average(CpuPerEvent);
            Console.WriteLine();
            Console.WriteLine($"| authentication | events/s (mean of {Rounds}) | throughput cost vs none | process CPU µs/event (mean) | CPU cost vs none | p99 ms (mean) |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (mode, runs) in results)
            {
                var rate = runs.Average(r => r.UnitsPerSecond);
                var cpu = runs.Average(CpuPerEvent);
                var cost = (none - rate) / none * 100;
                var cpuCost = (cpu - noneCpu) / noneCpu * 100;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {Describe(mode)} | {rate:N0} | {(mode == AuthMode.None ? "—" : $"{cost:+0.0;-0.0} %")} | {cpu:0.0} | {(mode == AuthMode.None ? "—" : $"{cpuCost:+0.0;-0.0} %")} | {runs.Average(r => r.PercentileMs(99)):0.0} |"));
            }

            return client.ProblemCount > 0 ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
            data.Delete(recursive: true);
        }
    }

    private static double CpuPerEvent(LoopResult result) =>
        result.Cpu.FirstOrDefault(c => c.Name == "process").Cores / result.UnitsPerSecond * 1_000_000;

    private static string Describe(AuthMode mode) => mode switch
    {
        AuthMode.None => "none (bench-only trusted header)",
        AuthMode.Bearer => "bearer API key",
        _ => "RFC 9421 signed (HMAC-SHA256 + Content-Digest + nonce)",
    };

    /// <summary>Bench only: trusts the header naming the tenant and grants events:write, checking nothing.</summary>
    private sealed class TrustedTenantHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            // The server's claim names (Atp.Server.Gateway.AtpClaims, internal there).
            var identity = new ClaimsIdentity(
                [new Claim("atp:key", "bench"), new Claim("atp:tenant", Request.Headers[AtpClient.TrustedTenantHeader].ToString()), new Claim("atp:scope", "events:write")],
                TrustScheme);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), TrustScheme)));
        }
    }
}
