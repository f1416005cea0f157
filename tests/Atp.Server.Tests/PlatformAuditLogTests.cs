using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// The platform audit log: administrative actions and refusals land in an ATP log of its own (tenant
/// atp-platform), readable only by platform admins, provable like any tenant log; detectors add alerts to it.
/// </summary>
public sealed class PlatformAuditLogTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<List<JsonElement>> PlatformEventsAsync()
    {
        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = _server.Admin;
        await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
        var page = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000");
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event").Clone())];
    }

    private static bool Is(JsonElement e, string type, string action) =>
        e.GetProperty("type").GetString() == type && e.GetProperty("action").GetString() == action;

    [Fact]
    public async Task Every_administrative_action_is_recorded_with_its_actor_and_target()
    {
        var tenantKey = await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.Admin;
        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys");
        var keyId = keys.GetProperty("items")[0].GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { ingestPerSecond = 500 } })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync($"/v1/tenants/acme/api-keys/{keyId}/rotate", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/tenants/acme/api-keys/{keyId}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { status = "suspended" })).StatusCode);

        var events = await PlatformEventsAsync();

        string[] expected = ["tenant.created", "api-key.created", "tenant.settings-changed", "api-key.rotated", "api-key.revoked", "tenant.suspended"];
        var actions = events.Where(e => e.GetProperty("type").GetString() == PlatformEvents.AdminType).Select(e => e.GetProperty("action").GetString()).ToArray();
        Assert.Equal(expected, actions);
        var changed = events.Single(e => Is(e, PlatformEvents.AdminType, "tenant.settings-changed"));
        Assert.Equal("500", changed.GetProperty("data").GetProperty("ingestPerSecond").GetString());
        Assert.Equal("acme", changed.GetProperty("targets")[0].GetProperty("id").GetString());
        Assert.Equal("bootstrap", changed.GetProperty("actor").GetProperty("id").GetString());
        Assert.Equal("127.0.0.1", changed.GetProperty("context").GetProperty("ip").GetString());

        // No key material in the log, ever.
        var raw = string.Join('\n', events.Select(e => e.GetRawText()));
        Assert.DoesNotContain(tenantKey, raw, StringComparison.Ordinal);
        Assert.DoesNotContain("atp_", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refusals_are_recorded_cross_tenant_residency_bad_key_and_signature_required()
    {
        var acme = await _server.CreateTenantWithKeyAsync("acme");
        await _server.CreateTenantWithKeyAsync("globex");
        using var acmeClient = _server.ClientWithKey(acme);
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.Forbidden, (await acmeClient.GetAsync("/v1/tenants/globex/events")).StatusCode);
        Assert.Equal((HttpStatusCode)421, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "far", name = "Far", homeRegion = "us-east" })).StatusCode);
        using var bad = _server.ClientWithKey(ApiKeyFormat.Generate());
        Assert.Equal(HttpStatusCode.Unauthorized, (await bad.GetAsync("/v1/tenants/acme/events")).StatusCode);
        await PolicySteps.ChangeAsync(_server, "acme", """{"requireSignedRequests":true}""");
        Assert.Equal(HttpStatusCode.Unauthorized, (await acmeClient.GetAsync("/v1/tenants/acme/events")).StatusCode);

        var events = await PlatformEventsAsync();

        var cross = events.Single(e => Is(e, PlatformEvents.SecurityType, PlatformEvents.CrossTenant));
        Assert.Equal("failure", cross.GetProperty("outcome").GetString());
        Assert.Contains("globex", cross.GetProperty("data").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Single(events, e => Is(e, PlatformEvents.SecurityType, PlatformEvents.ResidencyRefused));
        Assert.Single(events, e => Is(e, PlatformEvents.SecurityType, PlatformEvents.AuthFailed));
        Assert.Single(events, e => Is(e, PlatformEvents.SecurityType, PlatformEvents.SignatureRequired));
    }

    [Fact]
    public async Task Only_platform_admins_read_the_platform_log_and_no_one_can_create_its_tenant()
    {
        var tenantAdmin = await _server.CreateTenantWithKeyAsync("acme");
        using var client = _server.ClientWithKey(tenantAdmin);
        using var admin = _server.Admin;

        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/atp-platform/events"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/atp-platform/events", ServerFixture.Json(ServerFixture.Batch(1))), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants", new { id = "atp-platform", name = "Impostor" }), HttpStatusCode.BadRequest, "validation");

        // Not even a platform admin can mint a writer for it or suspend it.
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/atp-platform/api-keys", new { name = "forger", scopes = new[] { "events:write" } }), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await admin.PatchAsJsonAsync("/v1/tenants/atp-platform", new { status = "suspended" }), HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task The_platform_log_verifies_like_any_tenant_log()
    {
        await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.Admin;
        var first = ProofJson.Checkpoint(await ServerFixture.WaitForCheckpointAsync(admin, PlatformAuditLog.TenantId, 2));
        await _server.CreateTenantWithKeyAsync("globex");
        await _server.CreateKeyAsync("globex", Scopes.EventsRead);
        var note = await ServerFixture.WaitForCheckpointAsync(admin, PlatformAuditLog.TenantId, 5);

        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        var verifier = NoteVerifier.Parse(keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint).IsValid);
        Assert.Equal("atp.test/test-cell-1/atp-platform", checkpoint!.Origin);
        for (var i = 0UL; i < checkpoint.Size; i++)
        {
            var leaf = await admin.GetByteArrayAsync($"/v1/tenants/atp-platform/log/entries/{i}");
            var proof = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/atp-platform/log/proof/inclusion?index={i}&size={checkpoint.Size}");
            Assert.True(InclusionProof.Verify(i, checkpoint.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(proof), checkpoint.Root).IsValid);
        }

        var consistency = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/atp-platform/log/proof/consistency?from={first.Size}&to={checkpoint.Size}");
        Assert.True(ConsistencyProof.Verify(first.Size, checkpoint.Size, ProofJson.Hashes(consistency), first.Root, checkpoint.Root).IsValid);
    }

    [Fact]
    public async Task Twenty_failures_from_one_address_in_a_minute_raise_one_alert()
    {
        using var bad = _server.ClientWithKey(ApiKeyFormat.Generate());
        for (var i = 0; i < 25; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await bad.GetAsync("/v1/tenants/acme/events")).StatusCode);
        }

        var events = await PlatformEventsAsync();

        Assert.Equal(25, events.Count(e => Is(e, PlatformEvents.SecurityType, PlatformEvents.AuthFailed)));
        var alert = Assert.Single(events, e => e.GetProperty("type").GetString() == PlatformEvents.AlertType);
        Assert.Equal("alert.auth-failure-burst", alert.GetProperty("action").GetString());
        Assert.Equal("ip", alert.GetProperty("data").GetProperty("subjectType").GetString());
        Assert.Equal("127.0.0.1", alert.GetProperty("data").GetProperty("subject").GetString());
        Assert.Equal("20", alert.GetProperty("data").GetProperty("failures").GetString());
    }

    [Fact]
    public async Task Failures_of_one_known_key_raise_an_alert_naming_the_key()
    {
        using var admin = _server.Admin;
        var key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bank", Scopes.EventsWrite);
        using var forger = new HttpClient(new SigningHandler(key) { WrongSecret = new byte[32] }) { BaseAddress = _server.BaseAddress };
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await forger.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        }

        var events = await PlatformEventsAsync();

        Assert.Equal(20, events.Count(e => Is(e, PlatformEvents.SecurityType, PlatformEvents.SignatureInvalid)));
        Assert.Contains(events, e => e.GetProperty("type").GetString() == PlatformEvents.AlertType
            && e.GetProperty("data").GetProperty("subjectType").GetString() == "api-key"
            && e.GetProperty("data").GetProperty("subject").GetString() == key.Id);
        Assert.Equal(0UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_key_served_by_a_cell_of_a_second_region_raises_an_alert()
    {
        using (var admin = _server.Admin)
        {
            var created = await admin.PostAsJsonAsync("/v1/tenants", new { id = "roamer", name = "Roamer", residency = new { mode = "permitted", allowedRegions = new[] { "northeu" } } });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var key = await _server.CreateKeyAsync("roamer", Scopes.EventsWrite);
        using (var client = _server.ClientWithKey(key))
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/roamer/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        }

        // The same data served by a cell of another region the tenant allows.
        _server.Region = "northeu";
        await _server.RestartAsync();
        using (var client = _server.ClientWithKey(key))
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/roamer/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/roamer/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        }

        var events = await PlatformEventsAsync();

        var alert = Assert.Single(events, e => Is(e, PlatformEvents.AlertType, "alert.key-second-region"));
        Assert.Equal("local", alert.GetProperty("data").GetProperty("previousRegion").GetString());
        Assert.Equal("northeu", alert.GetProperty("data").GetProperty("region").GetString());
    }

    [Fact]
    public async Task Replays_and_rate_limit_hits_are_recorded_the_latter_once_per_minute()
    {
        using var admin = _server.Admin;
        var key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bank", Scopes.EventsWrite);
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/bank", new { limits = new { ingestPerSecond = 2 } })).StatusCode);
        var handler = new SigningHandler(key);
        using var client = new HttpClient(handler) { BaseAddress = _server.BaseAddress };
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        handler.Replay = handler.Last;
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        handler.Replay = null;
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        }

        var events = await PlatformEventsAsync();

        Assert.True(statuses.Count(s => s == HttpStatusCode.TooManyRequests) >= 3, string.Join(",", statuses));
        var replay = Assert.Single(events, e => Is(e, PlatformEvents.SecurityType, PlatformEvents.SignatureReplayed));
        Assert.Equal(key.Id, replay.GetProperty("data").GetProperty("keyId").GetString());
        // Several refusals, one record (two if the burst happened to straddle a minute boundary).
        var limited = events.Where(e => Is(e, PlatformEvents.SecurityType, PlatformEvents.RateLimited)).ToList();
        Assert.InRange(limited.Count, 1, 2);
        Assert.Equal("bank", limited[0].GetProperty("targets")[0].GetProperty("id").GetString());
    }
}
