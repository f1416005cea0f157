using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary>
/// Limits that count work, not requests (events and bytes ingested, the cost of reads), and per-IP limits that only a
/// verified credential escapes and that never lock out health probes — all over real Kestrel.
/// </summary>
public sealed class FairnessTests : IAsyncLifetime
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
    public async Task Work_limits_have_edition_defaults_and_platform_admin_overrides()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:RateLimits:Default:IngestEventsPerSecond"] = null,
            ["Atp:RateLimits:Default:IngestBytesPerSecond"] = null,
            ["Atp:RateLimits:Default:ReadCostPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:IngestEventsPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:IngestBytesPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:ReadCostPerSecond"] = null,
        });
        await _server.CreateTenantWithKeyAsync("small");
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "large", name = "Large", edition = "enterprise" })).StatusCode);

        Assert.Equal((2_000, 2 * 1024 * 1024, 60), WorkLimits(await SettingsAsync(admin, "small")));
        Assert.Equal((10_000, 10 * 1024 * 1024, 240), WorkLimits(await SettingsAsync(admin, "large")));

        var patched = await admin.PatchAsJsonAsync("/v1/tenants/small", new { limits = new { ingestEventsPerSecond = 500, ingestBytesPerSecond = 65_536, readCostPerSecond = 9 } });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal((500, 65_536, 9), WorkLimits(await SettingsAsync(admin, "small")));

        // null puts the edition's default back.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsync("/v1/tenants/small", ServerFixture.Json("{\"limits\":{\"readCostPerSecond\":null}}"))).StatusCode);
        Assert.Equal((500, 65_536, 60), WorkLimits(await SettingsAsync(admin, "small")));
    }

    [Fact]
    public async Task Invalid_work_limits_are_refused_and_change_nothing()
    {
        _server = await ServerFixture.StartAsync();
        await _server.CreateTenantWithKeyAsync("small");
        using var admin = _server.Admin;
        var before = WorkLimits(await SettingsAsync(admin, "small"));

        foreach (var body in new[] { "{\"limits\":{\"ingestBytesPerSecond\":1023}}", "{\"limits\":{\"ingestEventsPerSecond\":0}}", "{\"limits\":{\"readCostPerSecond\":\"9\"}}", "{\"limits\":{\"readCostPerSecond\":1.5}}" })
        {
            await ProblemAssert.IsProblemAsync(await admin.PatchAsync("/v1/tenants/small", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
        }

        Assert.Equal(before, WorkLimits(await SettingsAsync(admin, "small")));
    }

    [Fact]
    public async Task A_batch_is_charged_its_events_and_the_refusal_names_the_events_limit()
    {
        // A bucket holds at least the largest batch, so the batch limit comes down to the events limit under test.
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Ingestion:MaxEventsPerRequest"] = "100" });
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("busy"));
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/busy", new { limits = new { ingestEventsPerSecond = 100 } })).StatusCode);

        // Three requests well under the request limit, each a full bucket: 100 events against a bucket of 100 that
        // refills 100 a second. The second is refused unless a whole second passed since the first, so even a slow
        // machine sees a refusal (with smaller batches the margin would be a fraction of a second).
        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            responses.Add(await client.PostAsync("/v1/tenants/busy/events", ServerFixture.Json(ServerFixture.Batch(100))));
        }

        Assert.Equal(HttpStatusCode.Created, responses[0].StatusCode);
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        var problem = await ProblemAssert.IsProblemAsync(refused[0], HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Contains("ingest-events limit of 100 events per second", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("\"ingest-events\";q=100;w=1", refused[0].Headers.GetValues("RateLimit-Policy").Single());
        Assert.StartsWith("\"ingest-events\";r=0;t=", refused[0].Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
        Assert.InRange(int.Parse(refused[0].Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture), 1, 2);
        var accepted = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(3, accepted + refused.Count);
        Assert.Equal((ulong)(100 * accepted), await _server.TreeSizeAsync("busy"));
    }

    [Fact]
    public async Task Ingest_is_charged_its_body_bytes_and_the_refusal_names_the_bytes_limit()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Ingestion:MaxRequestBytes"] = "4096" });
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("busy"));
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/busy", new { limits = new { ingestBytesPerSecond = 4096 } })).StatusCode);
        // Each body is most of the 4,096-byte bucket, so the second is refused unless ~0.8 s passed since the first.
        var body = ServerFixture.Batch(15);
        Assert.InRange(body.Length, 3300, 4096);

        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < 6; i++)
        {
            responses.Add(await client.PostAsync("/v1/tenants/busy/events", ServerFixture.Json(body)));
        }

        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        await ProblemAssert.IsProblemAsync(refused[0], HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Equal("\"ingest-bytes\";q=4096;w=1", refused[0].Headers.GetValues("RateLimit-Policy").Single());
        Assert.True(refused[0].Headers.Contains("Retry-After"));
        var accepted = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(6, accepted + refused.Count);
        Assert.Equal((ulong)(15 * accepted), await _server.TreeSizeAsync("busy"));
    }

    [Fact]
    public async Task Verified_searches_of_a_thousand_cost_more_than_plain_reads_and_are_refused_by_the_read_cost_limit()
    {
        _server = await ServerFixture.StartAsync();
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("reader"));
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/reader", new { limits = new { readCostPerSecond = 120 } })).StatusCode);

        // A verified page of 1,000 costs (1 + 1000/100) × 10 = 110 of the 120 a second; a second one in the same second cannot fit.
        var expensive = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++)
        {
            expensive.Add(await client.GetAsync("/v1/tenants/reader/events?verify=true&limit=1000"));
        }

        Assert.Equal(HttpStatusCode.OK, expensive[0].StatusCode);
        var refused = expensive.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        var problem = await ProblemAssert.IsProblemAsync(refused[0], HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Contains("read-cost limit of 120 read-cost units per second", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("\"read-cost\";q=120;w=1", refused[0].Headers.GetValues("RateLimit-Policy").Single());
        Assert.True(refused[0].Headers.Contains("Retry-After"));

        // What is left of the second (at least 10) still pays for plain reads of cost 1.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/reader/projection")).StatusCode);
    }

    [Fact]
    public async Task A_garbage_authorization_header_does_not_escape_the_anonymous_limit()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:RateLimits:AnonymousPerIpPerSecond"] = "3" });
        var good = await _server.CreateTenantWithKeyAsync("acme");
        using var garbage = new HttpClient { BaseAddress = _server.BaseAddress };
        garbage.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer not-a-key-at-all");

        var statuses = new List<HttpResponseMessage>();
        for (var i = 0; i < 8; i++)
        {
            statuses.Add(await garbage.GetAsync("/v1/log/keys"));
        }

        var refused = statuses.FirstOrDefault(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.NotNull(refused);
        Assert.Equal("\"ip-anonymous\";q=3;w=1", refused.Headers.GetValues("RateLimit-Policy").Single());

        // A credential that verified is not anonymous: the same address keeps working with it.
        using var client = _server.ClientWithKey(good);
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/acme/events")).StatusCode);
        }
    }

    [Fact]
    public async Task A_credential_that_does_not_verify_counts_as_a_failure_even_where_no_credential_is_needed()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:RateLimits:FailuresPerIpPerMinute"] = "3" });
        var good = await _server.CreateTenantWithKeyAsync("acme");
        using var garbage = new HttpClient { BaseAddress = _server.BaseAddress };
        garbage.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Basic Z2FyYmFnZQ==");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await garbage.GetAsync("/v1/log/keys")).StatusCode);
        }

        using var client = _server.ClientWithKey(good);
        var response = await client.GetAsync("/v1/tenants/acme/events");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Equal("\"ip-failures\";q=3;w=60", response.Headers.GetValues("RateLimit-Policy").Single());
    }

    [Fact]
    public async Task Health_probes_are_never_locked_out_by_the_failure_or_anonymous_limits()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:RateLimits:FailuresPerIpPerMinute"] = "2",
            ["Atp:RateLimits:AnonymousPerIpPerSecond"] = "1",
        });
        using var bad = _server.ClientWithKey("atp_" + new string('x', 49));

        // A server just started is not ready until its sealer's first pass; wait for that (probes are never limited).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await bad.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the server did not become ready within 30 s");
            await Task.Delay(50);
        }

        for (var i = 0; i < 3; i++)
        {
            await bad.GetAsync("/v1/tenants/acme/events");
        }

        // The address is now locked out for everything else…
        await ProblemAssert.IsProblemAsync(await bad.GetAsync("/v1/log/keys"), HttpStatusCode.TooManyRequests, "rate-limited");
        using var anonymous = _server.ClientWithKey(null);
        await ProblemAssert.IsProblemAsync(await anonymous.GetAsync("/v1/log/keys"), HttpStatusCode.TooManyRequests, "rate-limited");

        // …but the probes answer, many times a second, with or without a (bad) credential.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/livez")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/readyz")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await bad.GetAsync("/livez")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await bad.GetAsync("/readyz")).StatusCode);
        }
    }

    private static async Task<JsonElement> SettingsAsync(HttpClient admin, string tenant) =>
        (await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}")).GetProperty("settings");

    private static (int Events, int Bytes, int ReadCost) WorkLimits(JsonElement settings) =>
        (settings.GetProperty("ingestEventsPerSecond").GetInt32(), settings.GetProperty("ingestBytesPerSecond").GetInt32(), settings.GetProperty("readCostPerSecond").GetInt32());
}
