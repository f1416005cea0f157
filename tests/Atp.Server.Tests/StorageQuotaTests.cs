using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary>
/// Storage quotas per tenant over real Kestrel and the configured engine: the edition default, per-tenant overrides
/// that raise and lower it, 507 quota-exceeded with nothing stored, the usage in GET /v1/tenants/{tenant} equal to
/// the leaves read back, another tenant unaffected, and bad overrides refused.
/// </summary>
public sealed class StorageQuotaTests : IAsyncLifetime
{
    // The default edition here holds at most 6 events (the product default is 0, unlimited).
    private ServerFixture _server = null!;

    public async Task InitializeAsync() =>
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:RateLimits:Default:MaxStoredEvents"] = "6" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_edition_default_an_override_that_raises_it_and_one_that_lowers_it_are_enforced_whole_requests_at_a_time()
    {
        using var admin = _server.Admin;
        using var acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        using var other = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("other"));

        var fresh = await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme");
        Assert.Equal(6, fresh.GetProperty("settings").GetProperty("maxStoredEvents").GetInt64());
        Assert.Equal(0, fresh.GetProperty("settings").GetProperty("maxStoredBytes").GetInt64());
        Assert.Equal(0, fresh.GetProperty("usage").GetProperty("storedEvents").GetInt64());
        Assert.Equal(0, fresh.GetProperty("usage").GetProperty("storedBytes").GetInt64());

        // Under the quota: stored. The batch that would cross it: 507, nothing of it stored, even though 2 of its 3 would fit.
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(acme, "acme", 4)).StatusCode);
        var crossing = await ProblemAssert.IsProblemAsync(await PostAsync(acme, "acme", 3), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        var detail = crossing.GetProperty("detail").GetString();
        Assert.Contains("maxStoredEvents of 6", detail, StringComparison.Ordinal);
        Assert.Contains("4 are stored", detail, StringComparison.Ordinal);
        Assert.Contains("nothing was stored", detail, StringComparison.Ordinal);
        Assert.Equal(4UL, await _server.TreeSizeAsync("acme"));

        // Up to the quota exactly, then a single event past it is refused too.
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(acme, "acme", 2)).StatusCode);
        await ProblemAssert.IsProblemAsync(await PostAsync(acme, "acme", 1), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        Assert.Equal(6UL, await _server.TreeSizeAsync("acme"));

        // Another tenant of the same edition has its own usage.
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(other, "other", 5)).StatusCode);
        Assert.Equal(5, (await other.GetFromJsonAsync<JsonElement>("/v1/tenants/other")).GetProperty("usage").GetProperty("storedEvents").GetInt64());

        // An override raises it for this tenant only.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = 8 } })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(acme, "acme", 2)).StatusCode);
        await ProblemAssert.IsProblemAsync(await PostAsync(other, "other", 2), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        Assert.Equal(5UL, await _server.TreeSizeAsync("other"));

        // The usage shown is what the log holds: the tree size and the byte lengths of the leaves read back.
        var usage = (await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("usage");
        Assert.Equal(8, usage.GetProperty("storedEvents").GetInt64());
        Assert.Equal(await LeafBytesAsync(acme, "acme", 8), usage.GetProperty("storedBytes").GetInt64());

        // A byte quota just above the usage: a request that would cross it is refused, naming maxStoredBytes; 0 for
        // events means unlimited.
        var stored = usage.GetProperty("storedBytes").GetInt64();
        var patched = await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = 0, maxStoredBytes = stored + 10 } });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var settings = (await patched.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("settings");
        Assert.Equal(0, settings.GetProperty("maxStoredEvents").GetInt64());
        Assert.Equal(stored + 10, settings.GetProperty("maxStoredBytes").GetInt64());
        var bytes = await ProblemAssert.IsProblemAsync(await PostAsync(acme, "acme", 1), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        Assert.Contains($"maxStoredBytes of {stored + 10}: {stored} are stored", bytes.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(8UL, await _server.TreeSizeAsync("acme"));
        Assert.Equal(stored, (await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("usage").GetProperty("storedBytes").GetInt64());

        // Back to the edition default (null) after lifting the byte quota: 8 stored is over 6, so the tenant is refused.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = (long?)null, maxStoredBytes = (long?)null } })).StatusCode);
        await ProblemAssert.IsProblemAsync(await PostAsync(acme, "acme", 1), HttpStatusCode.InsufficientStorage, "quota-exceeded");

        // Lowered below what the other tenant holds: refused too, its stored events untouched.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/other", new { limits = new { maxStoredEvents = 3 } })).StatusCode);
        await ProblemAssert.IsProblemAsync(await PostAsync(other, "other", 1), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        var otherUsage = (await other.GetFromJsonAsync<JsonElement>("/v1/tenants/other")).GetProperty("usage");
        Assert.Equal(5, otherUsage.GetProperty("storedEvents").GetInt64());
        Assert.Equal(await LeafBytesAsync(other, "other", 5), otherUsage.GetProperty("storedBytes").GetInt64());
    }

    [Fact]
    public async Task A_single_event_post_is_refused_at_the_quota_and_bad_overrides_are_400_with_nothing_changed()
    {
        using var admin = _server.Admin;
        using var acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = 1 } })).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);
        await ProblemAssert.IsProblemAsync(await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        Assert.Equal(1UL, await _server.TreeSizeAsync("acme"));

        foreach (var limits in new object[] { new { maxStoredEvents = -1 }, new { maxStoredBytes = -5L }, new { maxStoredEvents = 1.5 } })
        {
            var refused = await ProblemAssert.IsProblemAsync(await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits }), HttpStatusCode.BadRequest, "validation");
            Assert.Contains("maxStored", refused.GetRawText(), StringComparison.Ordinal);
        }

        await ProblemAssert.IsProblemAsync(
            await admin.PatchAsync("/v1/tenants/acme", ServerFixture.Json("{\"limits\":{\"maxStoredBytes\":\"lots\"}}")), HttpStatusCode.BadRequest, "validation");
        var settings = (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("settings");
        Assert.Equal(1, settings.GetProperty("maxStoredEvents").GetInt64());
        Assert.Equal(0, settings.GetProperty("maxStoredBytes").GetInt64());

        // A tenant admin sees the quota but may not change it.
        Assert.Equal(HttpStatusCode.Forbidden, (await acme.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = 100 } })).StatusCode);
    }

    [Fact]
    public async Task A_retry_of_a_stored_request_at_the_quota_replays_its_receipts_and_only_new_events_are_refused()
    {
        using var admin = _server.Admin;
        using var acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxStoredEvents = 4 } })).StatusCode);

        // Fill the quota: a batch of 3 under an Idempotency-Key, then one event whose id the client assigned.
        var batch = ServerFixture.Batch(3);
        var first = await PostWithKeyAsync(acme, batch, "retry-at-quota");
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var firstReceipts = await first.Content.ReadAsStringAsync();
        var clientId = Guid.NewGuid().ToString();
        var single = ServerFixture.Event(id: clientId);
        var stored = await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(single));
        Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        var storedReceipt = await stored.Content.ReadAsStringAsync();
        Assert.Equal(4UL, await _server.TreeSizeAsync("acme"));

        // The client lost the replies and retries both: the same receipts come back, marked as replays, not 507.
        var replay = await PostWithKeyAsync(acme, batch, "retry-at-quota");
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal("true", Assert.Single(replay.Headers.GetValues("Idempotent-Replayed")));
        Assert.Equal(firstReceipts, await replay.Content.ReadAsStringAsync());
        var resent = await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(single));
        Assert.Equal(HttpStatusCode.Created, resent.StatusCode);
        Assert.Equal(storedReceipt, await resent.Content.ReadAsStringAsync());

        // The key with another body is still the key's misuse, not a quota matter.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await PostWithKeyAsync(acme, ServerFixture.Batch(2), "retry-at-quota")).StatusCode);

        // Anything new is refused whole: a new key, a new client id, and a batch mixing a stored id with a new one.
        await ProblemAssert.IsProblemAsync(await PostWithKeyAsync(acme, batch, "another-key"), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        await ProblemAssert.IsProblemAsync(
            await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event(id: Guid.NewGuid().ToString()))), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        var mixed = "{\"events\":[" + single + "," + ServerFixture.Event(id: Guid.NewGuid().ToString()) + "]}";
        await ProblemAssert.IsProblemAsync(await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(mixed)), HttpStatusCode.InsufficientStorage, "quota-exceeded");
        Assert.Equal(4UL, await _server.TreeSizeAsync("acme"));
        Assert.Equal(4, (await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("usage").GetProperty("storedEvents").GetInt64());
    }

    private static async Task<HttpResponseMessage> PostWithKeyAsync(HttpClient client, string body, string idempotencyKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tenants/acme/events") { Content = ServerFixture.Json(body) };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        return await client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, string tenant, int count) =>
        client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(count)));

    private static async Task<long> LeafBytesAsync(HttpClient client, string tenant, int size)
    {
        long sum = 0;
        for (var i = 0; i < size; i++)
        {
            sum += (await client.GetByteArrayAsync($"/v1/tenants/{tenant}/log/entries/{i}")).Length;
        }

        return sum;
    }
}
