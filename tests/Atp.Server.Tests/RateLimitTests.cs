using System.Net;
using System.Net.Http.Json;

namespace Atp.Server.Tests;

/// <summary>Per-tenant limits by edition with platform-admin overrides, per-IP limits, and the 429 they answer with.</summary>
public sealed class RateLimitTests : IAsyncLifetime
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

    /// <summary>A server with the product's own rate-limit defaults, optionally adjusted.</summary>
    private async Task StartWithProductLimitsAsync(Dictionary<string, string?>? changes = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Atp:RateLimits:Default:IngestPerSecond"] = null,
            ["Atp:RateLimits:Default:QueryPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:IngestPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:QueryPerSecond"] = null,
            ["Atp:RateLimits:Default:IngestEventsPerSecond"] = null,
            ["Atp:RateLimits:Default:IngestBytesPerSecond"] = null,
            ["Atp:RateLimits:Default:ReadCostPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:IngestEventsPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:IngestBytesPerSecond"] = null,
            ["Atp:RateLimits:Enterprise:ReadCostPerSecond"] = null,
            ["Atp:RateLimits:AnonymousPerIpPerSecond"] = null,
            ["Atp:RateLimits:FailuresPerIpPerMinute"] = null,
        };
        foreach (var (key, value) in changes ?? [])
        {
            settings[key] = value;
        }

        _server = await ServerFixture.StartAsync(settings: settings);
    }

    [Fact]
    public async Task Edition_defaults_are_50_30_and_200_100()
    {
        await StartWithProductLimitsAsync();
        await _server.CreateTenantWithKeyAsync("small");
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "large", name = "Large", edition = "enterprise" })).StatusCode);

        var small = (await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/tenants/small")).GetProperty("settings");
        var large = (await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/tenants/large")).GetProperty("settings");

        Assert.Equal((50, 30), (small.GetProperty("ingestPerSecond").GetInt32(), small.GetProperty("queryPerSecond").GetInt32()));
        Assert.Equal((200, 100), (large.GetProperty("ingestPerSecond").GetInt32(), large.GetProperty("queryPerSecond").GetInt32()));
    }

    [Fact]
    public async Task Ingest_beyond_the_limit_gets_429_with_retry_after_and_ratelimit_headers_and_stores_nothing()
    {
        await StartWithProductLimitsAsync();
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("small"));
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/small", new { limits = new { ingestPerSecond = 10 } })).StatusCode);

        // 60 requests at once: the bucket holds 10 and refills 10 per second; however slow the engine, most are refused.
        var responses = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => client.PostAsync("/v1/tenants/small/events", ServerFixture.Json(ServerFixture.Batch(1)))));

        var accepted = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(60, accepted + refused.Count);
        Assert.InRange(accepted, 10, 59);
        var first = refused[0];
        await ProblemAssert.IsProblemAsync(first, HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.True(int.Parse(first.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Equal("\"ingest\";q=10;w=1", first.Headers.GetValues("RateLimit-Policy").Single());
        Assert.StartsWith("\"ingest\";r=0;t=", first.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
        Assert.Equal((ulong)accepted, await _server.TreeSizeAsync("small"));
    }

    [Fact]
    public async Task A_platform_admin_override_applies_at_once_and_reads_have_their_own_bucket()
    {
        await StartWithProductLimitsAsync();
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("small"));
        using var admin = _server.Admin;
        var patched = await admin.PatchAsJsonAsync("/v1/tenants/small", new { limits = new { ingestPerSecond = 3 } });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(3, (await patched.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("settings").GetProperty("ingestPerSecond").GetInt32());

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await client.PostAsync("/v1/tenants/small/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        }

        Assert.True(statuses.Count(s => s == HttpStatusCode.Created) is >= 3 and <= 5, string.Join(",", statuses));
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/small/events")).StatusCode);
    }

    [Fact]
    public async Task Invalid_limit_overrides_are_refused_and_change_nothing()
    {
        await StartWithProductLimitsAsync();
        await _server.CreateTenantWithKeyAsync("small");
        using var admin = _server.Admin;

        var zero = await admin.PatchAsync("/v1/tenants/small", ServerFixture.Json("{\"limits\":{\"ingestPerSecond\":0}}"));
        var unknown = await admin.PatchAsync("/v1/tenants/small", ServerFixture.Json("{\"limits\":{\"burst\":5}}"));
        var notBool = await admin.PatchAsync("/v1/tenants/small", ServerFixture.Json("{\"requireSignedRequests\":\"yes\"}"));

        await ProblemAssert.IsProblemAsync(zero, HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(unknown, HttpStatusCode.BadRequest, "validation");
        // A policy setting is not PATCHed at all (docs/policy.md), whatever its value.
        await ProblemAssert.IsProblemAsync(notBool, HttpStatusCode.Conflict, "policy-approval-required");
        var settings = (await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/tenants/small")).GetProperty("settings");
        Assert.Equal(50, settings.GetProperty("ingestPerSecond").GetInt32());
        Assert.False(settings.GetProperty("requireSignedRequests").GetBoolean());
    }

    [Fact]
    public async Task An_address_that_keeps_failing_authentication_is_shut_out_even_with_a_good_key()
    {
        await StartWithProductLimitsAsync(new() { ["Atp:RateLimits:FailuresPerIpPerMinute"] = "5" });
        var good = await _server.CreateTenantWithKeyAsync("small");
        using var bad = _server.ClientWithKey("atp_" + new string('x', 49));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await bad.GetAsync("/v1/tenants/small/events")).StatusCode);
        }

        using var client = _server.ClientWithKey(good);
        var response = await client.PostAsync("/v1/tenants/small/events", ServerFixture.Json(ServerFixture.Batch(1)));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Equal("\"ip-failures\";q=5;w=60", response.Headers.GetValues("RateLimit-Policy").Single());
        Assert.Equal(0UL, await _server.TreeSizeAsync("small"));
    }

    [Fact]
    public async Task Requests_without_credentials_are_limited_per_address()
    {
        await StartWithProductLimitsAsync(new() { ["Atp:RateLimits:AnonymousPerIpPerSecond"] = "3" });
        using var anonymous = _server.ClientWithKey(null);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await anonymous.GetAsync("/v1/log/keys")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
    }
}
