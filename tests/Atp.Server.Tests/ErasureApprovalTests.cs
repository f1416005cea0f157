using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// Two-person erasure over real Kestrel and the configured engine, on a manual clock: a tenant whose policy (changed
/// by one admin, approved by another) requires erasure approval gets a pending request for an erasure, nothing erased;
/// its requester cannot approve it with any of their keys; a second person's approval erases exactly as an immediate
/// erasure does, with every earlier proof still verifying; rejected, expired and held requests erase nothing; and no
/// closed request keeps the subject in the store.
/// </summary>
public sealed class ErasureApprovalTests : IAsyncLifetime, IDisposable
{
    private const int PendingLimit = 3;

    private readonly PumpedClock _clock = new(DateTimeOffset.UtcNow);
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(clock: _clock.Clock, settings: new Dictionary<string, string?>
        {
            ["Atp:Classification:SealEnvelopeFields"] = "true",
            ["Atp:Erasure:MaxPendingRequestsPerTenant"] = PendingLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _clock.Dispose();

    [Fact]
    public async Task A_requested_erasure_waits_for_a_second_person_then_erases_and_every_earlier_proof_still_verifies()
    {
        var (alice, aliceAgain, bob) = await TenantWithApprovalAsync("acme");
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var marker = Guid.NewGuid().ToString("N")[..10];
        var erased = $"subject-{marker}-s";
        var kept = $"subject-{marker}-t";
        var batch = Enumerable.Range(0, 8).Select(i => ErasureTests.Event(i % 2 == 0 ? erased : kept, $"Person {marker} {i}"));
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + string.Join(',', batch) + "]}"))).StatusCode);
        var firstNote = await ServerFixture.WaitForCheckpointAsync(writer, "acme", 8);
        var leavesBefore = new List<byte[]>();
        for (var i = 0; i < 8; i++)
        {
            leavesBefore.Add(await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}"));
        }

        var erasedKeyId = ErasureTests.KeyIdOf(leavesBefore[0]);

        // The request: 202, shown by the subject's key id, never the subject; nothing erased, nothing appended.
        var requested = await alice.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = erased, reason = "GDPR art. 17 request #4711" });
        var requestBody = await requested.Content.ReadAsStringAsync();
        Assert.True(requested.StatusCode == HttpStatusCode.Accepted, requestBody);
        Assert.DoesNotContain(erased, requestBody, StringComparison.Ordinal);
        var request = JsonDocument.Parse(requestBody).RootElement;
        var id = request.GetProperty("id").GetString()!;
        Assert.Matches("^era_[a-z2-7]{26}$", id);
        Assert.Equal($"/v1/tenants/acme/erasures/{id}", requested.Headers.Location?.OriginalString);
        Assert.Equal("pending", request.GetProperty("state").GetString());
        Assert.Equal(erasedKeyId, request.GetProperty("subjectKeyId").GetString());
        Assert.Equal("alice@example.com", request.GetProperty("requestedBy").GetString());
        Assert.Equal("GDPR art. 17 request #4711", request.GetProperty("reason").GetString());
        Assert.Equal(request.GetProperty("createdAt").GetDateTimeOffset().AddDays(7), request.GetProperty("expiresAt").GetDateTimeOffset());
        Assert.Equal(8UL, await _server.TreeSizeAsync("acme"));
        await ServerFixture.WaitForProjectionAsync(piiReader, "acme");
        Assert.Contains($"Person {marker} 0", await piiReader.GetStringAsync("/v1/tenants/acme/events?limit=50"), StringComparison.Ordinal);
        Assert.Equal((erased, "pending", (long?)null), await StoredRequestAsync(id));

        // The requester cannot approve it, with this key or another of theirs; it stays pending.
        foreach (var self in new[] { alice, aliceAgain })
        {
            await ProblemAssert.IsProblemAsync(await self.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Forbidden, "self-approval");
        }

        Assert.Equal(8UL, await _server.TreeSizeAsync("acme"));
        Assert.Equal("pending", (await alice.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/erasures/{id}")).GetProperty("state").GetString());

        // A second person approves: erased as an immediate erasure is, for this request.
        var approved = await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null);
        var approvedBody = await approved.Content.ReadAsStringAsync();
        Assert.True(approved.StatusCode == HttpStatusCode.Created, approvedBody);
        var erasure = JsonDocument.Parse(approvedBody).RootElement;
        Assert.Equal(erasedKeyId, erasure.GetProperty("subjectKeyId").GetString());
        Assert.True(erasure.GetProperty("keyDestroyed").GetBoolean());
        Assert.Equal(8UL, erasure.GetProperty("tombstone").GetProperty("index").GetUInt64());
        Assert.Equal(id, erasure.GetProperty("requestId").GetString());
        Assert.Equal(9UL, await _server.TreeSizeAsync("acme"));

        await ServerFixture.WaitForProjectionAsync(piiReader, "acme");
        var afterPage = await piiReader.GetStringAsync("/v1/tenants/acme/events?limit=50");
        foreach (var i in new[] { 0, 2, 4, 6 })
        {
            Assert.DoesNotContain($"Person {marker} {i}", afterPage, StringComparison.Ordinal);
        }

        Assert.Contains($"Person {marker} 1", afterPage, StringComparison.Ordinal);
        var tombstoneLeaf = await writer.GetByteArrayAsync("/v1/tenants/acme/log/entries/8");
        Assert.DoesNotContain(erased, Encoding.UTF8.GetString(tombstoneLeaf), StringComparison.Ordinal);
        Assert.Equal("GDPR art. 17 request #4711", JsonDocument.Parse(tombstoneLeaf).RootElement.GetProperty("data").GetProperty("reason").GetString());

        await ErasureTests.AssertEarlierProofsVerifyAsync(writer, "acme", firstNote, leavesBefore, 9);

        // Closed: the store no longer holds the subject; the request says who approved it and its tombstone; once only.
        Assert.Equal(((string?)null, "approved", (long?)8), await StoredRequestAsync(id));
        var closed = await alice.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/erasures/{id}");
        Assert.Equal(("approved", "bob@example.com", 8UL), (closed.GetProperty("state").GetString(), closed.GetProperty("closedBy").GetString(), closed.GetProperty("tombstoneIndex").GetUInt64()));
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Conflict, "erasure-request-not-pending");
        Assert.Equal(9UL, await _server.TreeSizeAsync("acme"));

        // The platform audit log has each step under the request id and the key id, never the subject.
        foreach (var action in new[] { "erasure.requested", "erasure.self-approval", "erasure.approved", "subject.erased" })
        {
            var records = await PlatformRecordsAsync(action, id);
            Assert.DoesNotContain(erased, records, StringComparison.Ordinal);
            Assert.Contains(erasedKeyId, records, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_rejected_request_erases_nothing_and_keeps_no_subject_and_bad_requests_store_nothing()
    {
        var (alice, _, bob) = await TenantWithApprovalAsync("acme");
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ErasureTests.Event("user-1", "Ada Lovelace")))).StatusCode);

        // Refused with nothing stored: not a tenant admin, bad bodies.
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "user-1", reason = "r" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.GetAsync("/v1/tenants/acme/erasures")).StatusCode);
        foreach (var body in new[] { """{"reason":"r"}""", """{"subject":"user-1"}""", """{"subject":"","reason":"r"}""", $$"""{"subject":"{{new string('s', 257)}}","reason":"r"}""", $$"""{"subject":"user-1","reason":"{{new string('r', 1025)}}"}""" })
        {
            await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/erasures", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
        }

        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/erasures", ServerFixture.Json("{\"subject\":\"")), HttpStatusCode.BadRequest, "malformed-json");
        Assert.Empty((await alice.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/erasures")).GetProperty("items").EnumerateArray());
        Assert.Equal(1UL, await _server.TreeSizeAsync("acme"));

        var id = await RequestAsync(alice, "user-1");
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.PostAsJsonAsync($"/v1/tenants/acme/erasures/{id}/reject", new { reason = "no" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null)).StatusCode);
        await ProblemAssert.IsProblemAsync(await bob.PostAsJsonAsync($"/v1/tenants/acme/erasures/{id}/reject", new { }), HttpStatusCode.BadRequest, "validation");
        Assert.Equal(("user-1", "pending", (long?)null), await StoredRequestAsync(id));

        var rejected = await bob.PostAsJsonAsync($"/v1/tenants/acme/erasures/{id}/reject", new { reason = "identity not verified" });
        Assert.Equal(HttpStatusCode.OK, rejected.StatusCode);
        var body2 = await rejected.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(("rejected", "bob@example.com", "identity not verified"), (body2.GetProperty("state").GetString(), body2.GetProperty("closedBy").GetString(), body2.GetProperty("closeReason").GetString()));
        Assert.Equal(((string?)null, "rejected", (long?)null), await StoredRequestAsync(id));
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Conflict, "erasure-request-not-pending");
        await ProblemAssert.IsProblemAsync(await alice.PostAsJsonAsync($"/v1/tenants/acme/erasures/{id}/reject", new { reason = "again" }), HttpStatusCode.Conflict, "erasure-request-not-pending");
        Assert.Equal(1UL, await _server.TreeSizeAsync("acme"));

        // The requester may withdraw their own request.
        var withdrawn = await RequestAsync(alice, "user-1");
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsJsonAsync($"/v1/tenants/acme/erasures/{withdrawn}/reject", new { reason = "sent by mistake" })).StatusCode);
        await PlatformRecordsAsync("erasure.rejected", withdrawn);

        // Listing by state (the order, newest first, is the storage contract's: these may share a tick of the manual
        // clock); a state that is none is refused.
        var pending = await RequestAsync(alice, "user-2");
        Assert.Equal([pending], await IdsAsync(alice, "?state=pending"));
        Assert.Equal(new[] { withdrawn, id }.Order(), (await IdsAsync(alice, "?state=rejected")).Order());
        Assert.Equal(new[] { pending, withdrawn, id }.Order(), (await IdsAsync(alice, "")).Order());
        Assert.DoesNotContain("user-", await alice.GetStringAsync("/v1/tenants/acme/erasures"), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(await alice.GetAsync("/v1/tenants/acme/erasures?state=done"), HttpStatusCode.BadRequest, "validation");

        // Another tenant's admin finds none of them, under its own tenant; an unknown id is not found.
        using var other = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("globex"));
        await ProblemAssert.IsProblemAsync(await other.GetAsync($"/v1/tenants/globex/erasures/{pending}"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await other.PostAsync($"/v1/tenants/globex/erasures/{pending}/approve", null), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await other.PostAsJsonAsync($"/v1/tenants/globex/erasures/{pending}/reject", new { reason = "r" }), HttpStatusCode.NotFound, "not-found");
        Assert.Empty((await other.GetFromJsonAsync<JsonElement>("/v1/tenants/globex/erasures")).GetProperty("items").EnumerateArray());
        await ProblemAssert.IsProblemAsync(await alice.GetAsync("/v1/tenants/acme/erasures/era_unknown"), HttpStatusCode.NotFound, "not-found");
        Assert.Equal("user-2", (await StoredRequestAsync(pending)).Subject);

        // Bounded: past the limit of pending requests, nothing more is stored.
        await RequestAsync(alice, "user-3");
        await RequestAsync(alice, "user-4");
        await ProblemAssert.IsProblemAsync(await alice.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "user-5", reason = "r" }), HttpStatusCode.Conflict, "erasure-request-limit");
        Assert.Equal(PendingLimit, (await IdsAsync(alice, "?state=pending")).Count);
    }

    [Fact]
    public async Task A_hold_placed_before_the_approval_stops_the_erasure_and_closes_the_request_as_failed()
    {
        var (alice, _, bob) = await TenantWithApprovalAsync("acme");
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead, Scopes.PiiRead));
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ErasureTests.Event("user-1", "Ada Lovelace")))).StatusCode);
        var id = await RequestAsync(alice, "user-1");

        var placed = await bob.PostAsJsonAsync("/v1/tenants/acme/holds", new { scope = new { actorId = "user-1" }, reason = "matter 2026-CV-0815" });
        Assert.Equal(HttpStatusCode.Created, placed.StatusCode);
        var holdId = (await placed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

        var refused = await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Conflict, "legal-hold");
        Assert.Equal([holdId], refused.GetProperty("holds").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(1UL, await _server.TreeSizeAsync("acme"));
        await ServerFixture.WaitForProjectionAsync(writer, "acme");
        Assert.Contains("Ada Lovelace", await writer.GetStringAsync("/v1/tenants/acme/events"), StringComparison.Ordinal);

        var failed = await alice.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/erasures/{id}");
        Assert.Equal("failed", failed.GetProperty("state").GetString());
        Assert.Contains(holdId, failed.GetProperty("closeReason").GetString(), StringComparison.Ordinal);
        Assert.Equal(((string?)null, "failed", (long?)null), await StoredRequestAsync(id));
        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Conflict, "erasure-request-not-pending");

        // While the hold is active a new request is refused at once, with nothing stored.
        await ProblemAssert.IsProblemAsync(await alice.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "user-1", reason = "again" }), HttpStatusCode.Conflict, "legal-hold");
        Assert.Empty(await IdsAsync(alice, "?state=pending"));
    }

    [Fact]
    public async Task An_expired_request_cannot_be_approved_and_keeps_no_subject()
    {
        var (alice, _, bob) = await TenantWithApprovalAsync("acme");
        var id = await RequestAsync(alice, "user-1");

        _clock.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));

        await ProblemAssert.IsProblemAsync(await bob.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null), HttpStatusCode.Conflict, "erasure-request-not-pending");
        Assert.Equal("expired", (await alice.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/erasures/{id}")).GetProperty("state").GetString());
        Assert.Equal(((string?)null, "expired", (long?)null), await StoredRequestAsync(id));
        Assert.Equal(0UL, await _server.TreeSizeAsync("acme"));
        await PlatformRecordsAsync("erasure.expired", id);
    }

    [Fact]
    public async Task Without_two_person_approval_a_single_operator_approves_their_own_request()
    {
        await using var single = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Classification:SealEnvelopeFields"] = "true",
            ["Atp:Policy:TwoPersonApproval"] = "false",
        });
        await single.CreateTenantWithKeyAsync("acme");
        using var alice = single.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(single, "acme", "alice@example.com"));
        var proposal = await PolicySteps.ProposeAsync(alice, "acme", """{"requireErasureApproval":true}""");
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal}/approve", null)).StatusCode);

        var id = await RequestAsync(alice, "user-1");
        var approved = await alice.PostAsync($"/v1/tenants/acme/erasures/{id}/approve", null);
        Assert.Equal(HttpStatusCode.Created, approved.StatusCode);
        Assert.Equal(1UL, await single.TreeSizeAsync("acme"));
    }

    // alice (two keys) and bob: tenant admins; alice proposes requireErasureApproval, bob approves it.
    private async Task<(HttpClient Alice, HttpClient AliceAgain, HttpClient Bob)> TenantWithApprovalAsync(string tenant)
    {
        await _server.CreateTenantWithKeyAsync(tenant);
        var alice = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, tenant, "alice@example.com"));
        var aliceAgain = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, tenant, "alice@example.com"));
        var bob = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, tenant, "bob@example.com"));
        var proposal = await PolicySteps.ProposeAsync(alice, tenant, """{"requireErasureApproval":true}""");
        var approved = await bob.PostAsync($"/v1/tenants/{tenant}/policy/proposals/{proposal}/approve", null);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        var policy = await alice.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/policy");
        Assert.True(policy.GetProperty("active").GetProperty("document").GetProperty("requireErasureApproval").GetBoolean());
        return (alice, aliceAgain, bob);
    }

    private static async Task<string> RequestAsync(HttpClient admin, string subject)
    {
        var response = await admin.PostAsJsonAsync($"/v1/tenants/acme/erasures", new { subject, reason = "GDPR request" });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<List<string>> IdsAsync(HttpClient admin, string query) =>
        [.. (await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/erasures{query}")).GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetString()!)];

    // The request's stored row, read straight from the storage (not through the API, which never shows the subject).
    private async Task<(string? Subject, string State, long? TombstoneIndex)> StoredRequestAsync(string id)
    {
        var (connection, schema) = await ClassifiedFieldTests.OpenStoreAsync(_server.DataDirectory, _server.StorageArguments);
        await using (connection)
        {
            await using var read = connection.CreateCommand();
            read.CommandText = $"SELECT subject, state, tombstone_index FROM {schema}erasure_requests WHERE {(schema.Length > 0 ? "request_id" : "id")} = '{id}'";
            await using var reader = await read.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync(), $"no stored row for {id}");
            return (reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
        }
    }

    // The platform audit log's records of the action that name the request (appended from a queue, then projected: waited for).
    private async Task<string> PlatformRecordsAsync(string action, string requestId)
    {
        using var platformAdmin = _server.Admin;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var records = await platformAdmin.GetStringAsync($"/v1/tenants/atp-platform/events?limit=200&action={action}");
            if (records.Contains(requestId, StringComparison.Ordinal))
            {
                return records;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no {action} record of {requestId} in the platform audit log within 20 s");
            await Task.Delay(100);
        }
    }
}
