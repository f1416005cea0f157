using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Legal holds over real Kestrel and the configured engine: placed, listed, read and released by a tenant admin with
/// every step in the platform audit log; invalid holds refused with nothing stored; and an active hold that may cover a
/// data subject refuses the subject's erasure (409 legal-hold, nothing erased) until it is released.
/// </summary>
public sealed class LegalHoldTests : IAsyncLifetime
{
    private const int HoldLimit = 3;
    private ServerFixture _server = null!;

    public async Task InitializeAsync() =>
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Classification:SealEnvelopeFields"] = "true",
            ["Atp:Holds:MaxActiveHoldsPerTenant"] = HoldLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Places_lists_reads_and_releases_a_hold_with_each_step_in_the_platform_audit_log()
    {
        await _server.CreateTenantWithKeyAsync("acme");
        using var counsel = _server.ClientWithKey(await OwnedAdminKeyAsync("acme", "counsel@example.com"));

        var placed = await counsel.PostAsync("/v1/tenants/acme/holds", ServerFixture.Json("""
            {"scope":{"eventTypes":["billing.invoice.v1","auth.login.v1"],"actorId":"user-7","from":"2026-01-01T00:00:00Z","until":"2027-01-01T00:00:00Z"},
             "reason":"Litigation hold, matter 2026-CV-0815"}
            """));
        var hold = await CreatedAsync(placed);
        var id = hold.GetProperty("id").GetString()!;
        Assert.Matches("^hold_[a-z2-7]{26}$", id);
        Assert.Equal($"/v1/tenants/acme/holds/{id}", placed.Headers.Location?.OriginalString);
        Assert.Equal(["billing.invoice.v1", "auth.login.v1"], hold.GetProperty("scope").GetProperty("eventTypes").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("user-7", hold.GetProperty("scope").GetProperty("actorId").GetString());
        Assert.False(hold.GetProperty("scope").TryGetProperty("targetId", out _));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), hold.GetProperty("scope").GetProperty("from").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero), hold.GetProperty("scope").GetProperty("until").GetDateTimeOffset());
        Assert.Equal("Litigation hold, matter 2026-CV-0815", hold.GetProperty("reason").GetString());
        Assert.Equal("counsel@example.com", hold.GetProperty("issuer").GetString());
        Assert.True(hold.GetProperty("active").GetBoolean());

        var listed = await counsel.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/holds");
        Assert.Equal([id], listed.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("id").GetString()));
        var read = await counsel.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/holds/{id}");
        Assert.Equal(hold.GetRawText(), read.GetRawText());
        await ProblemAssert.IsProblemAsync(await counsel.GetAsync("/v1/tenants/acme/holds/hold_unknown"), HttpStatusCode.NotFound, "not-found");

        // Released by another admin: recorded with that person; a second release is refused and changes nothing.
        using var other = _server.ClientWithKey(await OwnedAdminKeyAsync("acme", "dpo@example.com"));
        var released = await other.PostAsJsonAsync($"/v1/tenants/acme/holds/{id}/release", new { reason = "Matter settled" });
        Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        var releasedHold = await released.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(releasedHold.GetProperty("active").GetBoolean());
        Assert.Equal("dpo@example.com", releasedHold.GetProperty("releasedBy").GetString());
        var releasedAt = releasedHold.GetProperty("releasedAt").GetDateTimeOffset();
        await ProblemAssert.IsProblemAsync(await counsel.PostAsJsonAsync($"/v1/tenants/acme/holds/{id}/release", new { reason = "again" }), HttpStatusCode.Conflict, "hold-not-active");
        await ProblemAssert.IsProblemAsync(await counsel.PostAsJsonAsync("/v1/tenants/acme/holds/hold_unknown/release", new { reason = "r" }), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(releasedAt, (await counsel.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/holds/{id}")).GetProperty("releasedAt").GetDateTimeOffset());
        Assert.Equal("dpo@example.com", (await counsel.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/holds/{id}")).GetProperty("releasedBy").GetString());

        Assert.Empty((await counsel.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/holds")).GetProperty("items").EnumerateArray());
        Assert.Equal([id], (await counsel.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/holds?includeReleased=true")).GetProperty("items").EnumerateArray().Select(h => h.GetProperty("id").GetString()));

        // The platform audit log: placed and released, each naming the hold, the tenant and the people.
        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = _server.Admin;
        await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
        var page = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000&action=hold.*");
        var events = page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
            .Where(e => e.GetProperty("data").GetProperty("holdId").GetString() == id).ToList();
        Assert.Equal(["hold.placed", "hold.released"], events.Select(e => e.GetProperty("action").GetString()));
        Assert.All(events, e => Assert.Equal("acme", e.GetProperty("targets")[0].GetProperty("id").GetString()));
        Assert.Equal("counsel@example.com", events[0].GetProperty("data").GetProperty("issuer").GetString());
        Assert.Equal("Litigation hold, matter 2026-CV-0815", events[0].GetProperty("data").GetProperty("reason").GetString());
        Assert.Contains("user-7", events[0].GetProperty("data").GetProperty("scope").GetString(), StringComparison.Ordinal);
        Assert.Equal("dpo@example.com", events[1].GetProperty("data").GetProperty("releasedBy").GetString());
        Assert.Equal("Matter settled", events[1].GetProperty("data").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Refuses_an_invalid_hold_or_release_with_every_error_and_stores_nothing()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("refusals"));
        string[] invalid =
        [
            """{"scope":{},"reason":"r","issuer":"someone-else"}""",
            """{"scope":{"actorld":"user-7"},"reason":"a misspelt member must not widen the hold"}""",
            """{"scope":{}}""",
            """{"scope":{},"reason":"   "}""",
            "{\"scope\":{},\"reason\":\"" + new string('r', 1025) + "\"}",
            """{"reason":"no scope"}""",
            "{\"scope\":{\"eventTypes\":[" + string.Join(',', Enumerable.Range(0, 101).Select(i => $"\"t{i}\"")) + "]},\"reason\":\"r\"}",
            "{\"scope\":{\"eventTypes\":[\"" + new string('t', 201) + "\"]},\"reason\":\"r\"}",
            """{"scope":{"eventTypes":[""]},"reason":"r"}""",
            "{\"scope\":{\"actorId\":\"" + new string('a', 257) + "\"},\"reason\":\"r\"}",
            """{"scope":{"targetId":""},"reason":"r"}""",
            """{"scope":{"from":"2027-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"},"reason":"r"}""",
            """{"scope":{"from":"2026-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"},"reason":"r"}""",
            """{"scope":{"eventTypes":"app.audit"},"reason":"r"}""",
            """{"scope":{"from":"yesterday"},"reason":"r"}""",
            """["scope"]""",
        ];
        foreach (var body in invalid)
        {
            var problem = await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants/refusals/holds", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
            Assert.True(problem.GetProperty("errors").GetArrayLength() > 0, body);
        }

        // Every error of the body at once.
        var several = await ProblemAssert.IsProblemAsync(
            await admin.PostAsync("/v1/tenants/refusals/holds", ServerFixture.Json("""{"scope":{"actorId":"","from":"2027-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}}""")),
            HttpStatusCode.BadRequest, "validation");
        Assert.Equal(3, several.GetProperty("errors").GetArrayLength());

        Assert.Empty((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/refusals/holds?includeReleased=true")).GetProperty("items").EnumerateArray());

        // A release without a reason leaves the hold active.
        var id = (await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/refusals/holds", new { scope = new { }, reason = "whole log" }))).GetProperty("id").GetString();
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync($"/v1/tenants/refusals/holds/{id}/release", new { reason = "" }), HttpStatusCode.BadRequest, "validation");
        Assert.True((await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/refusals/holds/{id}")).GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Active_holds_are_limited_per_tenant_and_a_release_makes_room()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("limited"));
        var ids = new List<string>();
        for (var i = 0; i < HoldLimit; i++)
        {
            ids.Add((await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/limited/holds", new { scope = new { targetId = $"case-{i}" }, reason = $"matter {i}" }))).GetProperty("id").GetString()!);
        }

        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/limited/holds", new { scope = new { }, reason = "one too many" }), HttpStatusCode.Conflict, "hold-limit");
        Assert.Equal(HoldLimit, (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/limited/holds?includeReleased=true")).GetProperty("items").GetArrayLength());

        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/v1/tenants/limited/holds/{ids[0]}/release", new { reason = "closed" })).StatusCode);
        await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/limited/holds", new { scope = new { }, reason = "now there is room" }));
    }

    [Fact]
    public async Task A_writer_key_is_forbidden_and_another_tenants_admin_sees_and_releases_nothing()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme-2"));
        var id = (await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/acme-2/holds", new { scope = new { actorId = "user-1" }, reason = "matter" }))).GetProperty("id").GetString();
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme-2", Scopes.EventsWrite, Scopes.EventsRead));
        await ProblemAssert.IsProblemAsync(await writer.PostAsJsonAsync("/v1/tenants/acme-2/holds", new { scope = new { }, reason = "r" }), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme-2/holds"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.GetAsync($"/v1/tenants/acme-2/holds/{id}"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.PostAsJsonAsync($"/v1/tenants/acme-2/holds/{id}/release", new { reason = "r" }), HttpStatusCode.Forbidden, "forbidden");

        using var globex = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("globex"));
        await ProblemAssert.IsProblemAsync(await globex.GetAsync("/v1/tenants/acme-2/holds"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await globex.PostAsJsonAsync($"/v1/tenants/acme-2/holds/{id}/release", new { reason = "r" }), HttpStatusCode.Forbidden, "forbidden");

        // Through its own tenant, acme-2's hold id is no hold at all.
        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/globex/holds/{id}"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await globex.PostAsJsonAsync($"/v1/tenants/globex/holds/{id}/release", new { reason = "r" }), HttpStatusCode.NotFound, "not-found");
        Assert.Empty((await globex.GetFromJsonAsync<JsonElement>("/v1/tenants/globex/holds?includeReleased=true")).GetProperty("items").EnumerateArray());
        Assert.True((await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme-2/holds/{id}")).GetProperty("active").GetBoolean());

        // The platform admin may act for the tenant.
        using var platform = _server.Admin;
        Assert.Equal([id], (await platform.GetFromJsonAsync<JsonElement>("/v1/tenants/acme-2/holds")).GetProperty("items").EnumerateArray().Select(h => h.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task A_hold_naming_the_subject_blocks_its_erasure_with_its_key_kept_until_the_hold_is_released()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("held"));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("held", Scopes.EventsWrite, Scopes.EventsRead));
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("held", Scopes.EventsRead, Scopes.PiiRead));
        var marker = Guid.NewGuid().ToString("N")[..10];
        var subject = $"subject-{marker}";
        await IngestAsync(writer, "held", Event(subject, $"Person {marker}"), Event("someone-else", "Other person", target: subject));
        await ServerFixture.WaitForProjectionAsync(piiReader, "held");

        var byActor = (await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/held/holds", new { scope = new { actorId = subject }, reason = "matter 1" }))).GetProperty("id").GetString()!;
        var byTarget = (await CreatedAsync(await admin.PostAsJsonAsync("/v1/tenants/held/holds", new { scope = new { targetId = subject, eventTypes = new[] { "never.ingested" } }, reason = "matter 2" }))).GetProperty("id").GetString()!;
        var sizeBefore = await _server.TreeSizeAsync("held");

        var refused = await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/held/erasures", new { subject, reason = "GDPR art. 17 request #1" }), HttpStatusCode.Conflict, "legal-hold");
        Assert.Equal("A legal hold covers this subject", refused.GetProperty("title").GetString());
        Assert.Equal(new[] { byActor, byTarget }.Order(StringComparer.Ordinal), refused.GetProperty("holds").EnumerateArray().Select(h => h.GetString()!).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(subject, refused.GetRawText(), StringComparison.Ordinal);

        // Nothing erased: no tombstone, and the key still opens the subject's name for a pii:read caller.
        Assert.Equal(sizeBefore, await _server.TreeSizeAsync("held"));
        Assert.Contains($"Person {marker}", await piiReader.GetStringAsync("/v1/tenants/held/events?limit=50"), StringComparison.Ordinal);

        // Releasing one still leaves the other holding the subject.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/v1/tenants/held/holds/{byActor}/release", new { reason = "done" })).StatusCode);
        var stillHeld = await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/held/erasures", new { subject, reason = "GDPR art. 17 request #1" }), HttpStatusCode.Conflict, "legal-hold");
        Assert.Equal([byTarget], stillHeld.GetProperty("holds").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(sizeBefore, await _server.TreeSizeAsync("held"));

        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/v1/tenants/held/holds/{byTarget}/release", new { reason = "done" })).StatusCode);
        var erased = await admin.PostAsJsonAsync("/v1/tenants/held/erasures", new { subject, reason = "GDPR art. 17 request #1" });
        Assert.Equal(HttpStatusCode.Created, erased.StatusCode);
        Assert.True((await erased.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("keyDestroyed").GetBoolean());
        await ServerFixture.WaitForProjectionAsync(piiReader, "held");
        Assert.DoesNotContain($"Person {marker}", await piiReader.GetStringAsync("/v1/tenants/held/events?limit=50"), StringComparison.Ordinal);

        // The refusal is in the platform audit log, naming the holds and never the subject.
        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var platform = _server.Admin;
        await ServerFixture.WaitForProjectionAsync(platform, PlatformAuditLog.TenantId);
        var audit = await platform.GetStringAsync("/v1/tenants/atp-platform/events?limit=1000&action=erasure.held");
        Assert.Contains(byTarget, audit, StringComparison.Ordinal);
        Assert.DoesNotContain(subject, audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hold_naming_no_party_blocks_only_when_the_subjects_events_fall_under_its_types_and_time_range()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("scoped"));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("scoped", Scopes.EventsWrite, Scopes.EventsRead));
        var subject = "subject-" + Guid.NewGuid().ToString("N")[..10];

        // The subject acts in app.audit events and is the target of a crm.contact event.
        await IngestAsync(writer, "scoped", Event(subject, "Subject S"), Event("agent-1", "Agent", type: "crm.contact", target: subject), Event("bystander", "Bystander", type: "billing.invoice"));
        await ServerFixture.WaitForProjectionAsync(admin, "scoped");

        // None of these may cover the subject: another type, another time, another party.
        await PlaceAsync(admin, "scoped", new { eventTypes = new[] { "billing.invoice" } });
        await PlaceAsync(admin, "scoped", new { eventTypes = new[] { "app.audit", "crm.contact" }, until = "2026-01-01T00:00:00Z" });
        var notCovering = new[] { await PlaceAsync(admin, "scoped", new { actorId = "bystander" }) };
        Assert.Equal(HoldLimit, (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/scoped/holds")).GetProperty("items").GetArrayLength());
        var sizeBefore = await _server.TreeSizeAsync("scoped");

        // Released to make room under the limit of this test server; a hold on the subject as a target by type.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/v1/tenants/scoped/holds/{notCovering[0]}/release", new { reason = "room" })).StatusCode);
        var byType = await PlaceAsync(admin, "scoped", new { eventTypes = new[] { "crm.contact" }, from = "2026-11-01T00:00:00Z" });
        var refused = await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/scoped/erasures", new { subject, reason = "request #2" }), HttpStatusCode.Conflict, "legal-hold");
        Assert.Equal([byType], refused.GetProperty("holds").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(sizeBefore, await _server.TreeSizeAsync("scoped"));

        // Released: the holds left (other type, other time) do not stop the erasure.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/v1/tenants/scoped/holds/{byType}/release", new { reason = "done" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants/scoped/erasures", new { subject, reason = "request #2" })).StatusCode);
        Assert.Equal(sizeBefore + 1, await _server.TreeSizeAsync("scoped"));
    }

    [Fact]
    public async Task Events_the_read_models_have_not_projected_yet_are_still_checked()
    {
        await using var ingestOnly = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Classification:SealEnvelopeFields"] = "true",
            ["Atp:Query:Projector"] = "false",
        });
        using var admin = ingestOnly.ClientWithKey(await ingestOnly.CreateTenantWithKeyAsync("lagging"));
        var subject = "subject-" + Guid.NewGuid().ToString("N")[..10];
        await IngestAsync(admin, "lagging", Event(subject, "Subject S", type: "crm.contact"));
        var hold = await PlaceAsync(admin, "lagging", new { eventTypes = new[] { "crm.contact" } });

        var refused = await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/lagging/erasures", new { subject, reason = "request #3" }), HttpStatusCode.Conflict, "legal-hold");
        Assert.Equal([hold], refused.GetProperty("holds").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(1UL, await ingestOnly.TreeSizeAsync("lagging"));
    }

    private Task<string> OwnedAdminKeyAsync(string tenant, string owner) => PolicySteps.TenantAdminKeyAsync(_server, tenant, owner);

    private static async Task<string> PlaceAsync(HttpClient admin, string tenant, object scope) =>
        (await CreatedAsync(await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/holds", new { scope, reason = "matter" }))).GetProperty("id").GetString()!;

    private static async Task<JsonElement> CreatedAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"expected 201, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static async Task IngestAsync(HttpClient writer, string tenant, params string[] events) =>
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json("{\"events\":[" + string.Join(',', events) + "]}"))).StatusCode);

    private static string Event(string actorId, string name, string type = "app.audit", string target = "doc-1") =>
        $"{{\"type\":\"{type}\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actorId}\",\"name\":{JsonSerializer.Serialize(name)}}},"
        + $"\"action\":\"document.update\",\"targets\":[{{\"type\":\"document\",\"id\":\"{target}\"}}],\"outcome\":\"success\","
        + "\"context\":{\"ip\":\"203.0.113.9\"}}";
}
