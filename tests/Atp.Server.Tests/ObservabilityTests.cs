using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Atp.Server.Tests;

/// <summary>
/// deploy/observability: the alert rules and the dashboard's queries pass promtool, and every metric they name is one
/// the server publishes (a renamed instrument must not leave an alert that can never fire).
/// </summary>
public sealed partial class ObservabilityTests
{
    private static readonly string Directory = Path.Combine(RepositoryRoot(), "deploy", "observability");

    // The labels ATP's instruments carry (src/Atp.Server/Telemetry/AtpMetrics.cs, Atp.Core StorageMetrics), dots as underscores.
    private static readonly HashSet<string> Labels = ["atp_region", "atp_edition", "atp_tenant", "atp_policy", "atp_action", "atp_engine"];

    [Fact]
    public void The_alert_rules_pass_promtool()
    {
        var (exit, output) = Promtool("check", "rules", Path.Combine(Directory, "atp-alerts.yaml"));
        Assert.True(exit == 0, output);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_dashboard_is_grafana_json_and_every_query_parses()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "atp-dashboard.json")));
        var root = dashboard.RootElement;
        Assert.Equal("atp-slo", root.GetProperty("uid").GetString());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));
        var expressions = DashboardExpressions(root);
        Assert.True(expressions.Count >= 10, $"only {expressions.Count} queries");

        // promtool parses PromQL only inside rule files: check each query as a recording rule.
        var rules = new StringBuilder("groups:\n  - name: dashboard\n    rules:\n");
        for (var i = 0; i < expressions.Count; i++)
        {
            rules.Append(System.Globalization.CultureInfo.InvariantCulture, $"      - record: dashboard:query_{i}\n        expr: {JsonSerializer.Serialize(expressions[i])}\n");
        }

        var path = Path.Combine(System.IO.Directory.CreateTempSubdirectory("atp-dashboard-").FullName, "queries.yaml");
        File.WriteAllText(path, rules.ToString());
        var (exit, output) = Promtool("check", "rules", path);
        Assert.True(exit == 0, output);
    }

    [Fact]
    public async Task Every_metric_the_rules_and_dashboard_name_is_published_by_the_server()
    {
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Prometheus"] = "true" });
        var key = await server.CreateTenantWithKeyAsync("observed");
        using var client = server.ClientWithKey(key);
        var events = new[] { new { type = "t", occurredAt = "2026-01-01T00:00:00Z", actor = new { type = "user", id = "u1" }, action = "a.b" } };
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/tenants/observed/events", new { events })).StatusCode);
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        var scraped = await anonymous.GetStringAsync("/metrics");
        var published = PublishedNames(); // after the ingest: some meters are created on first use

        // The ingest SLO counts requests above 300 ms: that boundary must be a bucket of the request histogram.
        Assert.Matches(@"http_server_request_duration_seconds_bucket\{[^\n]*http_request_method=""POST""[^\n]*le=""0.3""\}", scraped);

        var text = File.ReadAllText(Path.Combine(Directory, "atp-alerts.yaml")) + "\n"
            + string.Join("\n", DashboardExpressions(JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "atp-dashboard.json"))).RootElement));
        var named = MetricName().Matches(text).Select(m => m.Value).Distinct().ToList();
        Assert.NotEmpty(named);
        foreach (var name in named)
        {
            if (Labels.Contains(name))
            {
                continue;
            }

            var instrument = HistogramSuffix().Replace(name, string.Empty);
            Assert.True(published.Contains(instrument), $"{name} is named in deploy/observability but no instrument of the server publishes it (published: {string.Join(", ", published.Where(p => p.StartsWith("atp_", StringComparison.Ordinal)).Order())})");
        }
    }

    // Prometheus names of every instrument in this process (the in-process server's among them), as the OpenTelemetry
    // Prometheus exporter forms them: dots to underscores, the unit's suffix, _total for counters.
    private static HashSet<string> PublishedNames()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new MeterListener { InstrumentPublished = (instrument, _) => names.Add(PrometheusName(instrument)) };
        listener.Start();
        return names;
    }

    private static string PrometheusName(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_');
        name += instrument.Unit switch { "s" => "_seconds", "By" => "_bytes", _ => string.Empty };
        var counter = instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() is var type
            && (type == typeof(Counter<>) || type == typeof(ObservableCounter<>));
        return counter ? name + "_total" : name;
    }

    private static List<string> DashboardExpressions(JsonElement root) =>
        root.GetProperty("panels").EnumerateArray()
            .SelectMany(panel => panel.GetProperty("targets").EnumerateArray())
            .Select(target => target.GetProperty("expr").GetString()!)
            .ToList();

    private static (int Exit, string Output) Promtool(params string[] arguments)
    {
        var start = new ProcessStartInfo("promtool") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Fail("promtool is not installed: eng/test.sh fetches it as root; or install Debian's prometheus package (apt-get install -y prometheus)");
            throw;
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output.Result + error);
        }
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Atp.slnx")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("not inside the repository");
    }

    // Metric (and label) names of ATP and of ASP.NET Core's request histogram; recording rules (atp:…:…) do not match.
    [GeneratedRegex(@"(?<![:\w])(atp_[a-z_]+|http_server_[a-z_]+)")]
    private static partial Regex MetricName();

    [GeneratedRegex("_(bucket|count|sum)$")]
    private static partial Regex HistogramSuffix();
}
