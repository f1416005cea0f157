using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Atp.Storage.Contract;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Policy documents with two-person approval (docs/policy.md) over real Kestrel, on the engine TestStorage picks
/// (ATP_TEST_STORAGE=postgres for PostgreSQL): a change applies only when a different person approves it, and
/// ingest shows it does.
/// </summary>
public sealed class PolicyTests : IAsyncLifetime
{
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private ServerFixture _server = null!;
    private string _writer = null!;
    private string _alice = null!;
    private string _bob = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(clock: _clock);
        _writer = await _server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead);
        _alice = await TenantAdminAsync("acme", "alice@example.com");
        _bob = await TenantAdminAsync("acme", "bob@example.com");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<string> TenantAdminAsync(string tenant, string? owner, HttpClient? creator = null)
    {
        using var admin = _server.Admin;
        var response = await (creator ?? admin).PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", owner is null ? new { name = "admin", scopes = new[] { Scopes.TenantAdmin } } : (object)new { name = "admin", scopes = new[] { Scopes.TenantAdmin }, owner });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("key").GetString()!;
    }

    private static async Task<JsonElement> OkAsync(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static StringContent Proposal(string changes, string reason = "tighten ingest") =>
        ServerFixture.Json($$"""{"changes":{{changes}},"reason":"{{reason}}"}""");

    private async Task<HttpStatusCode> IngestUnregisteredAsync()
    {
        using var writer = _server.ClientWithKey(_writer);
        return (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode;
    }

    [Fact]
    public async Task A_change_applies_only_when_a_second_person_approves_it()
    {
        using var alice = _server.ClientWithKey(_alice);
        using var bob = _server.ClientWithKey(_bob);

        var proposal = await OkAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"requireRegisteredTypes":true}""")), HttpStatusCode.Created);
        Assert.Equal("pending", proposal.GetProperty("state").GetString());
        Assert.Equal(1, proposal.GetProperty("baseVersion").GetInt32());
        Assert.Equal("alice@example.com", proposal.GetProperty("proposedBy").GetString());
        Assert.True(proposal.GetProperty("document").GetProperty("requireRegisteredTypes").GetBoolean());
        Assert.Equal(JsonValueKind.Null, proposal.GetProperty("document").GetProperty("requireSignedRequests").ValueKind);
        Assert.Equal(_clock.GetUtcNow().AddDays(7), proposal.GetProperty("expiresAt").GetDateTimeOffset());

        // Proposed is not applied: an event of an unregistered type is still accepted.
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
        var before = await alice.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(1, before.GetProperty("active").GetProperty("version").GetInt32());
        Assert.Equal(JsonValueKind.Null, before.GetProperty("active").GetProperty("document").GetProperty("requireRegisteredTypes").ValueKind);
        Assert.Equal(proposal.GetProperty("id").GetString(), Assert.Single(before.GetProperty("pending").EnumerateArray()).GetProperty("id").GetString());

        var version = await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal.GetProperty("id").GetString()}/approve", null));
        Assert.Equal(2, version.GetProperty("version").GetInt32());
        Assert.Equal("alice@example.com", version.GetProperty("proposedBy").GetString());
        Assert.Equal("bob@example.com", version.GetProperty("approvedBy").GetString());

        // Applied at once on this node (the cached tenant is forgotten).
        Assert.Equal(HttpStatusCode.BadRequest, await IngestUnregisteredAsync());
        var after = await bob.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(2, after.GetProperty("active").GetProperty("version").GetInt32());
        Assert.Empty(after.GetProperty("pending").EnumerateArray());
        Assert.Equal([1], after.GetProperty("history").GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetInt32()));
        var closed = Assert.Single(after.GetProperty("history").GetProperty("proposals").EnumerateArray());
        Assert.Equal("applied", closed.GetProperty("state").GetString());
        Assert.Equal("bob@example.com", closed.GetProperty("closedBy").GetString());
        using var admin = _server.Admin;
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("settings").GetProperty("requireRegisteredTypes").GetBoolean());
    }

    [Fact]
    public async Task Self_approval_is_refused_with_the_same_key_another_key_of_the_owner_and_a_key_the_proposer_created()
    {
        using var alice = _server.ClientWithKey(_alice);
        var id = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");
        var aliceSecondKey = await TenantAdminAsync("acme", "alice@example.com");
        var keyAliceMade = await TenantAdminAsync("acme", owner: null, creator: alice);

        foreach (var key in new[] { _alice, aliceSecondKey, keyAliceMade })
        {
            using var client = _server.ClientWithKey(key);
            await ProblemAssert.IsProblemAsync(await client.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Forbidden, "self-approval");
        }

        // The key alice made without naming an owner is hers, and the listing says so.
        using var admin = _server.Admin;
        var keys = (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, keys.Count(k => k.GetProperty("owner").GetString() == "alice@example.com"));
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
        var policy = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(1, policy.GetProperty("active").GetProperty("version").GetInt32());
        Assert.Equal("pending", Assert.Single(policy.GetProperty("pending").EnumerateArray()).GetProperty("state").GetString());

        // A platform admin is another person: the proposal applies.
        using var platform = _server.ClientWithKey(await PolicySteps.PlatformKeyAsync(_server, "carol"));
        Assert.Equal("carol", (await OkAsync(await platform.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null))).GetProperty("approvedBy").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, await IngestUnregisteredAsync());
    }

    [Fact]
    public async Task A_rotated_key_keeps_its_owner_so_it_cannot_approve_for_its_predecessor()
    {
        using var alice = _server.ClientWithKey(_alice);
        var id = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":false}""");
        using var admin = _server.Admin;
        var aliceKeyId = (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys")).GetProperty("items").EnumerateArray()
            .First(k => k.GetProperty("owner").GetString() == "alice@example.com").GetProperty("id").GetString();

        var rotated = await OkAsync(await admin.PostAsync($"/v1/tenants/acme/api-keys/{aliceKeyId}/rotate", null), HttpStatusCode.Created);

        Assert.Equal("alice@example.com", rotated.GetProperty("owner").GetString());
        using var successor = _server.ClientWithKey(rotated.GetProperty("key").GetString());
        await ProblemAssert.IsProblemAsync(await successor.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Forbidden, "self-approval");
    }

    [Fact]
    public async Task A_proposal_over_a_replaced_version_is_stale_and_of_two_concurrent_approvals_one_applies()
    {
        using var alice = _server.ClientWithKey(_alice);
        using var bob = _server.ClientWithKey(_bob);
        var first = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");
        var second = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":false}""");

        await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{first}/approve", null));
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{second}/approve", null), HttpStatusCode.Conflict, "proposal-stale");
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{second}/approve", null), HttpStatusCode.Conflict, "proposal-not-pending");
        Assert.Equal(HttpStatusCode.BadRequest, await IngestUnregisteredAsync());

        var third = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":false}""");
        var fourth = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":null}""");
        using var bobAgain = _server.ClientWithKey(_bob);
        var answers = await Task.WhenAll(
            bob.PostAsync($"/v1/tenants/acme/policy/proposals/{third}/approve", null),
            bobAgain.PostAsync($"/v1/tenants/acme/policy/proposals/{fourth}/approve", null));

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Conflict], answers.Select(a => a.StatusCode).Order());
        var policy = await bob.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(3, policy.GetProperty("active").GetProperty("version").GetInt32());
        Assert.Empty(policy.GetProperty("pending").EnumerateArray());
        Assert.Equal(
            ["applied", "applied", "stale", "stale"],
            policy.GetProperty("history").GetProperty("proposals").EnumerateArray().Select(p => p.GetProperty("state").GetString()).Order());
    }

    [Fact]
    public async Task An_expired_proposal_is_shown_expired_and_cannot_be_approved_or_rejected()
    {
        using var alice = _server.ClientWithKey(_alice);
        using var bob = _server.ClientWithKey(_bob);
        var id = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");

        _clock.Advance(TimeSpan.FromDays(7));

        var policy = await bob.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Empty(policy.GetProperty("pending").EnumerateArray());
        Assert.Equal("expired", Assert.Single(policy.GetProperty("history").GetProperty("proposals").EnumerateArray()).GetProperty("state").GetString());
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Conflict, "proposal-not-pending");
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/reject", ServerFixture.Json("""{"reason":"late"}""")), HttpStatusCode.Conflict, "proposal-not-pending");
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
    }

    [Fact]
    public async Task A_rejected_or_withdrawn_proposal_cannot_be_approved()
    {
        using var alice = _server.ClientWithKey(_alice);
        using var bob = _server.ClientWithKey(_bob);
        var rejected = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");
        var withdrawn = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":false}""");

        var closed = await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{rejected}/reject", ServerFixture.Json("""{"reason":"not before the migration"}""")));
        await OkAsync(await alice.PostAsync($"/v1/tenants/acme/policy/proposals/{withdrawn}/reject", ServerFixture.Json("""{"reason":"typo"}""")));

        Assert.Equal("rejected", closed.GetProperty("state").GetString());
        Assert.Equal("not before the migration", closed.GetProperty("closeReason").GetString());
        foreach (var id in new[] { rejected, withdrawn })
        {
            await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Conflict, "proposal-not-pending");
        }

        await ProblemAssert.IsProblemAsync(await bob.PostAsync("/v1/tenants/acme/policy/proposals/pp_0000/approve", null), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
    }

    [Fact]
    public async Task Non_admins_are_refused_and_another_tenant_sees_nothing_of_the_policy()
    {
        using var alice = _server.ClientWithKey(_alice);
        var id = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");
        using var writer = _server.ClientWithKey(_writer);
        using var globex = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("globex", Scopes.TenantAdmin));

        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme/policy"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"requireRegisteredTypes":false}""")), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await writer.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Forbidden, "forbidden");

        // Another tenant's admin gets what it gets for a tenant that does not exist: nothing about acme.
        foreach (var tenant in new[] { "acme", "no-such-tenant" })
        {
            await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/{tenant}/policy"), HttpStatusCode.Forbidden, "forbidden");
            await ProblemAssert.IsProblemAsync(await globex.PostAsync($"/v1/tenants/{tenant}/policy/proposals/{id}/approve", null), HttpStatusCode.Forbidden, "forbidden");
        }

        using var admin = _server.Admin;
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/no-such-tenant/policy"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await globex.PostAsync($"/v1/tenants/globex/policy/proposals/{id}/approve", null), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
    }

    [Fact]
    public async Task Patch_of_a_policy_setting_is_refused_and_stores_nothing_of_the_request()
    {
        using var admin = _server.Admin;

        var refused = await ProblemAssert.IsProblemAsync(
            await admin.PatchAsJsonAsync("/v1/tenants/acme", new { status = "suspended", requireRegisteredTypes = true }), HttpStatusCode.Conflict, "policy-approval-required");

        Assert.Contains("/v1/tenants/acme/policy/proposals", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var tenant = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme");
        Assert.Equal("active", tenant.GetProperty("status").GetString());
        Assert.False(tenant.GetProperty("settings").GetProperty("requireRegisteredTypes").GetBoolean());
        await ProblemAssert.IsProblemAsync(await admin.PatchAsJsonAsync("/v1/tenants/acme", new { requireSignedRequests = true }), HttpStatusCode.Conflict, "policy-approval-required");
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { ingestPerSecond = 500 } })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, await IngestUnregisteredAsync());
    }

    [Theory]
    [InlineData("""{"changes":{"requireRegisteredTypes":"yes"},"reason":"r"}""")]
    [InlineData("""{"changes":{"retentionDays":30},"reason":"r"}""")]
    [InlineData("""{"changes":{},"reason":"r"}""")]
    [InlineData("""{"changes":[true],"reason":"r"}""")]
    [InlineData("""{"reason":"r"}""")]
    [InlineData("""{"changes":{"requireRegisteredTypes":true}}""")]
    [InlineData("""{"changes":{"requireRegisteredTypes":true},"reason":"   "}""")]
    [InlineData("""{"changes":{"requireRegisteredTypes":true},"reason":"bidi \u202e override"}""")]
    public async Task A_bad_proposal_is_400_and_nothing_is_stored(string body)
    {
        using var alice = _server.ClientWithKey(_alice);

        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");

        var policy = await alice.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Empty(policy.GetProperty("pending").EnumerateArray());
        Assert.Empty(policy.GetProperty("history").GetProperty("proposals").EnumerateArray());
    }

    [Fact]
    public async Task A_change_that_changes_nothing_is_refused_and_an_owner_must_be_printable()
    {
        using var alice = _server.ClientWithKey(_alice);
        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"requireSignedRequests":null}""")), HttpStatusCode.Conflict, "policy-unchanged");
        Assert.Empty((await alice.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy")).GetProperty("pending").EnumerateArray());

        using var admin = _server.Admin;
        foreach (var owner in new[] { "", "bell\u0007", new string('o', 201) })
        {
            await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "k", scopes = new[] { Scopes.TenantAdmin }, owner }), HttpStatusCode.BadRequest, "validation");
            await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/admin/keys", new { name = "k", owner }), HttpStatusCode.BadRequest, "validation");
        }
    }

    [Fact]
    public async Task Every_step_is_in_the_platform_audit_log_with_who_and_what()
    {
        using var alice = _server.ClientWithKey(_alice);
        using var bob = _server.ClientWithKey(_bob);
        var withdrawn = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":false}""");
        await OkAsync(await alice.PostAsync($"/v1/tenants/acme/policy/proposals/{withdrawn}/reject", ServerFixture.Json("""{"reason":"wrong value"}""")));
        var applied = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":true}""");
        await ProblemAssert.IsProblemAsync(await alice.PostAsync($"/v1/tenants/acme/policy/proposals/{applied}/approve", null), HttpStatusCode.Forbidden, "self-approval");
        await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{applied}/approve", null));
        var expired = await PolicySteps.ProposeAsync(alice, "acme", """{"requireRegisteredTypes":null}""");
        _clock.Advance(TimeSpan.FromDays(8));
        await bob.GetAsync("/v1/tenants/acme/policy");

        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = _server.Admin;
        await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
        var page = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000");
        var policyEvents = page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
            .Where(e => e.GetProperty("action").GetString()!.StartsWith("policy.", StringComparison.Ordinal)).ToList();

        Assert.Equal(
            ["policy.proposed", "policy.withdrawn", "policy.proposed", "policy.self-approval", "policy.approved", "policy.proposed", "policy.proposal-expired"],
            policyEvents.Select(e => e.GetProperty("action").GetString()));
        Assert.All(policyEvents, e => Assert.Equal("acme", e.GetProperty("targets")[0].GetProperty("id").GetString()));
        var approval = policyEvents.Single(e => e.GetProperty("action").GetString() == "policy.approved");
        var data = approval.GetProperty("data");
        Assert.Equal(applied, data.GetProperty("proposalId").GetString());
        Assert.Equal("2", data.GetProperty("version").GetString());
        Assert.Equal("1", data.GetProperty("previousVersion").GetString());
        Assert.Equal("requireRegisteredTypes: default -> true", data.GetProperty("changes").GetString());
        Assert.Equal("alice@example.com", data.GetProperty("proposedBy").GetString());
        Assert.Equal("bob@example.com", data.GetProperty("approvedBy").GetString());
        Assert.Equal("api-key", approval.GetProperty("actor").GetProperty("type").GetString());
        Assert.Equal(expired, policyEvents[^1].GetProperty("data").GetProperty("proposalId").GetString());
        Assert.Equal("failure", policyEvents[3].GetProperty("outcome").GetString());
    }
}

/// <summary>A single-operator cell (Atp:Policy:TwoPersonApproval=false): PATCH works as before and records a version; a proposer may approve.</summary>
public sealed class PolicyWithoutTwoPersonApprovalTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() =>
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Policy:TwoPersonApproval"] = "false" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Patch_changes_the_setting_as_a_new_version_and_the_proposer_may_approve_their_own_proposal()
    {
        var writerKey = await _server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite);
        using var writer = _server.ClientWithKey(writerKey);
        using var admin = _server.Admin;

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { requireRegisteredTypes = true })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);
        var policy = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(2, policy.GetProperty("active").GetProperty("version").GetInt32());
        Assert.True(policy.GetProperty("active").GetProperty("document").GetProperty("requireRegisteredTypes").GetBoolean());

        var id = await PolicySteps.ProposeAsync(admin, "acme", """{"requireRegisteredTypes":null}""");
        var approved = await admin.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);
    }
}

/// <summary>People signed in through OIDC (a provider on loopback) are their issuer and subject, whatever token they hold.</summary>
public sealed class PolicyOidcTests : IAsyncLifetime
{
    private OidcProvider _oidc = null!;
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        _oidc = await OidcProvider.StartAsync();
        _server = await ServerFixture.StartAsync(settings: _oidc.ServerSettings());
        await _server.CreateTenantWithKeyAsync("acme");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _oidc.DisposeAsync();
    }


    [Fact]
    public async Task The_same_subject_with_a_new_token_or_through_a_key_it_created_cannot_approve_and_another_subject_can()
    {
        using var dana = _server.ClientWithKey(_oidc.Token("dana", "acme", ["atp.tenant-admin"]));
        var id = await PolicySteps.ProposeAsync(dana, "acme", """{"requireRegisteredTypes":true}""");
        using var danaAgain = _server.ClientWithKey(_oidc.Token("dana", "acme", ["atp.tenant-admin"]));
        var created = await danaAgain.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "dana's script", scopes = new[] { Scopes.TenantAdmin } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var danaKey = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal($"oidc:{_oidc.Issuer}#dana", danaKey.GetProperty("owner").GetString());
        using var danaScript = _server.ClientWithKey(danaKey.GetProperty("key").GetString());

        foreach (var client in new[] { dana, danaAgain, danaScript })
        {
            await ProblemAssert.IsProblemAsync(await client.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null), HttpStatusCode.Forbidden, "self-approval");
        }

        using var erin = _server.ClientWithKey(_oidc.Token("erin", "acme", ["atp.tenant-admin"]));
        var approved = await erin.PostAsync($"/v1/tenants/acme/policy/proposals/{id}/approve", null);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        var version = await approved.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal($"oidc:{_oidc.Issuer}#dana", version.GetProperty("proposedBy").GetString());
        Assert.Equal($"oidc:{_oidc.Issuer}#erin", version.GetProperty("approvedBy").GetString());
    }
}
