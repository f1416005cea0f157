using System.Net;
using System.Net.Http.Json;

namespace Atp.Server.Tests;

/// <summary>The opt-in Prometheus endpoint over real Kestrel: ATP's instruments, bounded labels, no secrets.</summary>
public sealed partial class TelemetryTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Metrics_name_ingest_refusals_the_sealer_and_routes_without_keys_or_tenants()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Prometheus"] = "true" });
        var key = await _server.CreateTenantWithKeyAsync("metrics-tenant");
        using var client = _server.ClientWithKey(key);
        var events = Enumerable.Range(0, 7).Select(i => new
        {
            type = "document.changed",
            occurredAt = "2026-01-01T00:00:00Z",
            actor = new { type = "user", id = "u1" },
            action = "document.update",
            targets = new[] { new { type = "document", id = $"d{i}" } },
        });
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/tenants/metrics-tenant/events", new { events })).StatusCode);
        using var stranger = _server.ClientWithKey("atp_wrong_" + new string('x', 40));
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/v1/tenants/metrics-tenant/events")).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(client, "metrics-tenant", 7);

        // Metrics are collected on scrape; the counters above are there on the first one after the requests.
        using var anonymous = new HttpClient { BaseAddress = _server.BaseAddress };
        var response = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();

        // Other servers of the test run live in this process, and a meter provider listens to every meter of a name:
        // their events may be counted here too, so at least this server's 7.
        var ingested = IngestedEvents().Match(text);
        Assert.True(ingested.Success, "no atp_ingest_events_total series for edition default in region local");
        Assert.True(long.Parse(ingested.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 7, ingested.Value);
        Assert.Contains("atp_ingest_batch_size_bucket", text);
        Assert.Matches(@"atp_gateway_refusals_total\{[^}]*atp_action=""auth.failed""", text);
        Assert.Contains("atp_sealer_checkpoints_total", text);
        Assert.Matches(@"atp_storage_group_commit_requests_bucket\{[^}]*atp_engine=""(sqlite|postgres)""", text);
        Assert.Matches(@"atp_storage_group_commit_duration_seconds_count\{[^}]*atp_engine=""(sqlite|postgres)""[^}]*\} [1-9]", text);
        Assert.Contains("atp_sealer_lag_seconds", text);
        Assert.Contains("atp_projection_lag_seconds", text);
        // The cache's figures are observed, not counted: every server of the run has a cache reporting the same series,
        // and the exporter keeps one of their readings, which may be another server's 0. So this checks the series and
        // its labels; CachingTenantStoreTests checks the counts.
        Assert.Matches(@"atp_gateway_tenant_cache_lookups_total\{[^}]*result=""hit""[^}]*\} \d+", text);
        Assert.Matches(@"atp_gateway_tenant_cache_lookups_total\{[^}]*result=""miss""[^}]*\} \d+", text);
        Assert.Contains("atp_gateway_tenant_cache_entries", text);
        Assert.Matches(@"http_server_request_duration_seconds_bucket\{[^}]*http_route=""/v1/tenants/\{tenant\}/events/?""", text);

        // Deny by default for labels: no key, no tenant id, no client address (Kestrel names only its own listening address).
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.DoesNotContain("atp_wrong_", text, StringComparison.Ordinal);
        Assert.DoesNotContain("metrics-tenant", text, StringComparison.Ordinal);
        Assert.DoesNotContain("client_address", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tenant_labels_are_opt_in()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Prometheus"] = "true", ["Atp:Telemetry:TenantLabels"] = "true" });
        var key = await _server.CreateTenantWithKeyAsync("labelled");
        using var client = _server.ClientWithKey(key);
        var events = new[] { new { type = "t", occurredAt = "2026-01-01T00:00:00Z", actor = new { type = "user", id = "u1" }, action = "a.b" } };
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/tenants/labelled/events", new { events })).StatusCode);

        using var anonymous = new HttpClient { BaseAddress = _server.BaseAddress };
        var text = await anonymous.GetStringAsync("/metrics");
        Assert.Matches(@"atp_ingest_events_total\{[^}]*atp_tenant=""labelled""[^}]*\} 1", text);
    }

    [Fact]
    public async Task Without_the_option_there_is_no_scrape_endpoint()
    {
        _server = await ServerFixture.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = _server.BaseAddress };
        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("/metrics")).StatusCode);
    }

    [Fact]
    public async Task Telemetry_can_be_left_out_but_not_together_with_an_exporter()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Enabled"] = "false", ["Atp:Telemetry:Prometheus"] = "true" }));
        Assert.Contains("Atp:Telemetry:Enabled", error.ToString(), StringComparison.Ordinal);

        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Enabled"] = "false" });
        var key = await _server.CreateTenantWithKeyAsync("untracked");
        using var client = _server.ClientWithKey(key);
        var events = new[] { new { type = "t", occurredAt = "2026-01-01T00:00:00Z", actor = new { type = "user", id = "u1" }, action = "a.b" } };
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/tenants/untracked/events", new { events })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/metrics")).StatusCode);
    }

    [Theory]
    [InlineData("Atp:Telemetry:OtlpProtocol", "udp")]
    [InlineData("Atp:Telemetry:OtlpEndpoint", "ftp://collector:4317")]
    [InlineData("Atp:Telemetry:PrometheusPath", "/v1/metrics")]
    public async Task A_bad_telemetry_setting_stops_the_start_naming_it(string setting, string value)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ServerFixture.StartAsync(settings: new Dictionary<string, string?> { [setting] = value }));
        Assert.Contains(setting, error.ToString(), StringComparison.Ordinal);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"atp_ingest_events_total\{[^}]*atp_edition=""default""[^}]*atp_region=""local""[^}]*\} (\d+)")]
    private static partial System.Text.RegularExpressions.Regex IngestedEvents();
}
