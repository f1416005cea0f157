using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

public sealed class TenantApiTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Platform_admin_creates_and_reads_a_tenant()
    {
        using var admin = _server.Admin;
        var created = await admin.PostAsJsonAsync("/v1/tenants", new { id = "acme", name = "Acme", edition = "enterprise", homeRegion = "westeu", residency = new { mode = "permitted", allowedRegions = new[] { "northeu", "local" } } });

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/v1/tenants/acme", created.Headers.Location?.ToString());
        var tenant = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme");
        Assert.Equal("Acme", tenant.GetProperty("name").GetString());
        Assert.Equal("enterprise", tenant.GetProperty("edition").GetString());
        Assert.Equal("westeu", tenant.GetProperty("homeRegion").GetString());
        Assert.Equal("permitted", tenant.GetProperty("residency").GetProperty("mode").GetString());
        Assert.Equal("active", tenant.GetProperty("status").GetString());
        Assert.Equal("atp.test/test-cell-1/acme", tenant.GetProperty("origin").GetString());
    }

    [Fact]
    public async Task Duplicate_tenant_is_a_409()
    {
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "dup", name = "One" })).StatusCode);
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants", new { id = "dup", name = "Two" }), HttpStatusCode.Conflict, "tenant-exists");
    }

    [Theory]
    [InlineData("""{"id":"Bad_Id","name":"x"}""", "id:")]
    [InlineData("""{"id":"ok-id","name":""}""", "name:")]
    [InlineData("""{"id":"ok-id","name":"x","edition":"gold"}""", "edition:")]
    [InlineData("""{"id":"ok-id","name":"x","residency":{"mode":"loose"}}""", "residency.mode:")]
    [InlineData("""{"id":"ok-id","name":"x","homeRegion":"West EU"}""", "homeRegion:")]
    public async Task Invalid_tenants_are_400_and_not_stored(string body, string field)
    {
        using var admin = _server.Admin;
        var problem = await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
        Assert.Contains(problem.GetProperty("errors").EnumerateArray(), e => e.GetString()!.StartsWith(field, StringComparison.Ordinal));
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/ok-id"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Malformed_json_is_400_and_wrong_media_type_is_415()
    {
        using var admin = _server.Admin;
        await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants", ServerFixture.Json("{\"id\":")), HttpStatusCode.BadRequest, "malformed-json");
        await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants", new StringContent("{}", System.Text.Encoding.UTF8, "text/plain")), HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
    }

    [Fact]
    public async Task Missing_malformed_or_unknown_credentials_are_401_with_a_bearer_challenge()
    {
        using var anonymous = _server.ClientWithKey(null);
        using var malformed = _server.ClientWithKey("atp_not-a-key");
        using var unknown = _server.ClientWithKey(ApiKeyFormat.Generate());
        using var typo = _server.ClientWithKey(_server.AdminKey![..^1] + (_server.AdminKey[^1] == 'a' ? 'b' : 'a'));

        foreach (var client in new[] { anonymous, malformed, unknown, typo })
        {
            var response = await client.PostAsJsonAsync("/v1/tenants", new { id = "nope", name = "x" });
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }

        using var admin = _server.Admin;
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/nope"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Tenant_keys_cannot_create_tenants_or_read_other_tenants()
    {
        var acmeAdmin = await _server.CreateTenantWithKeyAsync("acme", Scopes.TenantAdmin);
        await _server.CreateTenantWithKeyAsync("globex");
        using var client = _server.ClientWithKey(acmeAdmin);

        await ProblemAssert.IsProblemAsync(await client.PostAsJsonAsync("/v1/tenants", new { id = "evil", name = "x" }), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/acme")).StatusCode);

        // A foreign tenant and a tenant that does not exist look the same to a tenant key.
        var foreign = await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/globex"), HttpStatusCode.Forbidden, "forbidden");
        var missing = await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/no-such-tenant"), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(foreign.GetProperty("detail").GetString(), missing.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Api_keys_are_shown_once_well_formed_and_scoped()
    {
        await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.Admin;
        var response = await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "ingest", scopes = new[] { "events:write" } });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var key = body.GetProperty("key").GetString()!;
        Assert.True(ApiKeyFormat.IsWellFormed(key));
        Assert.StartsWith("key_", body.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(["events:write"], body.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        // A write-only key may not read, nor create keys.
        using var writer = _server.ClientWithKey(key);
        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme/log/checkpoint"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "x", scopes = new[] { "events:read" } }), HttpStatusCode.Forbidden, "forbidden");
    }

    [Theory]
    [InlineData("""{"name":"x","scopes":["platform:admin"]}""")]
    [InlineData("""{"name":"x","scopes":[]}""")]
    [InlineData("""{"name":"","scopes":["events:read"]}""")]
    [InlineData("""{"name":"x","scopes":["events:delete"]}""")]
    public async Task Invalid_api_key_requests_are_400(string body)
    {
        await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.Admin;
        await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants/acme/api-keys", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task A_suspended_tenant_gets_403_on_every_call_until_reactivated()
    {
        var key = await _server.CreateTenantWithKeyAsync("acme");
        using var client = _server.ClientWithKey(key);
        using var admin = _server.Admin;

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { status = "suspended" })).StatusCode);
        await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.Forbidden, "tenant-suspended");
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/acme/log/checkpoint"), HttpStatusCode.Forbidden, "tenant-suspended");
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/acme"), HttpStatusCode.Forbidden, "tenant-suspended");
        Assert.Equal("suspended", (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { status = "active" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);
        await ProblemAssert.IsProblemAsync(await admin.PatchAsJsonAsync("/v1/tenants/acme", new { status = "deleted" }), HttpStatusCode.BadRequest, "validation");
    }
}
