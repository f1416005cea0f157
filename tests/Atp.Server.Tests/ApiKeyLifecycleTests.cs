using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Storage.Contract;

namespace Atp.Server.Tests;

/// <summary>
/// API key lifecycle: list without secrets, revoke at once, expiry, rotation with an overlap. The server runs on a
/// manual clock so that expiry is tested by moving time, not by racing a real one on a loaded machine.
/// </summary>
public sealed class ApiKeyLifecycleTests : IAsyncLifetime
{
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private ServerFixture _server = null!;
    private HttpClient _admin = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(clock: _clock);
        await _server.CreateTenantWithKeyAsync("acme");
        _admin = _server.Admin;
    }

    public async Task DisposeAsync()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Lists_keys_with_status_and_never_the_secret()
    {
        var (id, key) = await CreateKeyAsync(new { name = "reader", scopes = new[] { "events:read" } });

        var response = await _admin.GetAsync("/v1/tenants/acme/api-keys");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.DoesNotContain("atp_", text, StringComparison.Ordinal);
        using var body = JsonDocument.Parse(text);
        var item = body.RootElement.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetString() == id);
        Assert.Equal("reader", item.GetProperty("name").GetString());
        Assert.Equal("active", item.GetProperty("status").GetString());
        Assert.False(item.TryGetProperty("key", out _));
    }

    [Fact]
    public async Task A_revoked_key_is_refused_at_once()
    {
        var (id, key) = await CreateKeyAsync(new { name = "writer", scopes = new[] { "events:write", "events:read" } });
        using var client = _server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/acme/events")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/v1/tenants/acme/api-keys/{id}")).StatusCode);

        var refused = await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/acme/events"), HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("revoked", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.Unauthorized, "unauthenticated");
        var listed = await _admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys");
        Assert.Equal("revoked", listed.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetString() == id).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Unknown_or_foreign_keys_cannot_be_revoked()
    {
        await _server.CreateTenantWithKeyAsync("globex");
        var (globexKeyId, globexKey) = await CreateKeyAsync(new { name = "g", scopes = new[] { "events:read" } }, "globex");

        await ProblemAssert.IsProblemAsync(await _admin.DeleteAsync("/v1/tenants/acme/api-keys/key_0000000000000000"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await _admin.DeleteAsync($"/v1/tenants/acme/api-keys/{globexKeyId}"), HttpStatusCode.NotFound, "not-found");
        using var globex = _server.ClientWithKey(globexKey);
        Assert.Equal(HttpStatusCode.OK, (await globex.GetAsync("/v1/tenants/globex/events")).StatusCode);
    }

    [Fact]
    public async Task A_key_stops_working_when_it_expires()
    {
        var expiresAt = _clock.GetUtcNow().AddMinutes(10);
        var (_, key) = await CreateKeyAsync(new { name = "short", scopes = new[] { "events:read" }, expiresAt });
        using var client = _server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/acme/events")).StatusCode);

        _clock.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));

        var refused = await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/acme/events"), HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("expired", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(
            await _admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "past", scopes = new[] { "events:read" }, expiresAt = _clock.GetUtcNow().AddMinutes(-1) }),
            HttpStatusCode.BadRequest,
            "validation");
    }

    [Fact]
    public async Task Rotation_keeps_both_keys_valid_for_the_overlap_then_only_the_new_one()
    {
        var (oldId, oldKey) = await CreateKeyAsync(new { name = "ingest", scopes = new[] { "events:write", "events:read" } });

        var rotated = await _admin.PostAsJsonAsync($"/v1/tenants/acme/api-keys/{oldId}/rotate", new { overlapSeconds = 120 });
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        var body = await rotated.Content.ReadFromJsonAsync<JsonElement>();
        var newKey = body.GetProperty("key").GetString()!;
        Assert.Equal(oldId, body.GetProperty("replaces").GetString());
        Assert.Equal(["events:write", "events:read"], body.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        var oldExpiry = body.GetProperty("replacedKeyExpiresAt").GetDateTimeOffset();

        using var oldClient = _server.ClientWithKey(oldKey);
        using var newClient = _server.ClientWithKey(newKey);
        Assert.Equal(HttpStatusCode.OK, (await oldClient.GetAsync("/v1/tenants/acme/events")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync("/v1/tenants/acme/events")).StatusCode);

        Assert.Equal(_clock.GetUtcNow().AddSeconds(120), oldExpiry, TimeSpan.FromSeconds(1));
        _clock.Advance(oldExpiry - _clock.GetUtcNow() + TimeSpan.FromSeconds(1));

        await ProblemAssert.IsProblemAsync(await oldClient.GetAsync("/v1/tenants/acme/events"), HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync("/v1/tenants/acme/events")).StatusCode);

        // An expired key cannot be rotated again; bad overlaps are refused.
        await ProblemAssert.IsProblemAsync(await _admin.PostAsJsonAsync($"/v1/tenants/acme/api-keys/{oldId}/rotate", new { overlapSeconds = 1 }), HttpStatusCode.Conflict, "key-not-active");
        var newId = body.GetProperty("id").GetString();
        await ProblemAssert.IsProblemAsync(await _admin.PostAsJsonAsync($"/v1/tenants/acme/api-keys/{newId}/rotate", new { overlapSeconds = -1 }), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await _admin.PostAsJsonAsync("/v1/tenants/acme/api-keys/key_0000000000000000/rotate", new { }), HttpStatusCode.NotFound, "not-found");
    }

    private async Task<(string Id, string Key)> CreateKeyAsync(object request, string tenant = "acme")
    {
        var response = await _admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);
    }
}
