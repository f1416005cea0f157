using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;
using Atp.Storage.Contract;

namespace Atp.Server.Tests;

/// <summary>
/// Retention over real Kestrel and the configured engine, on a manual clock: events of several types are received
/// over simulated days; a retention policy applied by two people purges the content of expired entries (per-type days
/// win) with a purge record in the same log; purged entries answer 410 with their record; every inclusion proof (purged
/// and kept) and the consistency proof from a checkpoint taken before still verify; search no longer finds them; and
/// on the embedded engine no file of the data directory holds a purged event's unique value.
/// </summary>
public sealed class RetentionTests : IAsyncLifetime, IDisposable
{
    private readonly PumpedClock _pumped = new(DateTimeOffset.UtcNow);
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        // The sealer and the projector measure time on the manual clock: it moves 100 ms every 20 ms meanwhile.
        _server = await ServerFixture.StartAsync(clock: Clock, settings: new Dictionary<string, string?> { ["Atp:Retention:Enabled"] = "false" });
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _pumped.Dispose();

    private ManualClock Clock => _pumped.Clock;

    [Fact]
    public async Task Expired_entries_lose_their_content_with_a_purge_record_and_every_proof_still_verifies()
    {
        using var writer = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        using var alice = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, "acme", "alice@example.com"));
        using var bob = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, "acme", "bob@example.com"));
        var marker = Guid.NewGuid().ToString("N")[..12];

        // Day 0: entries 0-2 (debug: 5 days, audit: the 30-day default, keep: 365 days); day 10: entries 3-5.
        string[] values = [$"dbg0{marker}", $"aud0{marker}", $"kep0{marker}", $"dbg1{marker}", $"aud1{marker}", $"kep1{marker}"];
        await IngestAsync(writer, 0, ("app.debug", values[0]), ("app.audit", values[1]), ("app.keep", values[2]));
        Clock.Advance(TimeSpan.FromDays(10));
        await IngestAsync(writer, 3, ("app.debug", values[3]), ("app.audit", values[4]), ("app.keep", values[5]));
        var firstNote = await ServerFixture.WaitForCheckpointAsync(writer, "acme", 6);
        var leaves = new List<byte[]>();
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            leaves.Add(await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}"));
            ids.Add(JsonDocument.Parse(leaves[i]).RootElement.GetProperty("id").GetString()!);
        }

        // Before a policy sets retention, a pass has nothing to do and says so; nothing is appended.
        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null), HttpStatusCode.Conflict, "retention-not-configured");
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.PostAsync("/v1/tenants/acme/retention/run", null)).StatusCode);
        Assert.Equal(6UL, await _server.TreeSizeAsync("acme"));

        // The policy: days out of range, too many types, an unknown member are refused; a valid one needs a second person.
        foreach (var invalid in new[] { """{"days":0}""", """{"days":36501}""", """{"days":30,"types":{"app.debug":"5"}}""", """{"ttl":3}""", "[]" })
        {
            await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal(invalid)), HttpStatusCode.BadRequest, "validation");
        }

        var tooMany = "{\"days\":30,\"types\":{" + string.Join(',', Enumerable.Range(0, 201).Select(i => $"\"t.x{i}\":5")) + "}}";
        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal(tooMany)), HttpStatusCode.BadRequest, "validation");
        var proposal = await OkAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"days":30,"types":{"app.debug":5,"app.keep":365}}""")), HttpStatusCode.Created);
        Assert.Equal(30, proposal.GetProperty("document").GetProperty("retention").GetProperty("days").GetInt32());
        await ProblemAssert.IsProblemAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null), HttpStatusCode.Conflict, "retention-not-configured");
        var version = await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal.GetProperty("id").GetString()}/approve", null));
        var policyVersion = version.GetProperty("version").GetInt32();
        Assert.Equal(5, version.GetProperty("document").GetProperty("retention").GetProperty("types").GetProperty("app.debug").GetInt32());

        // Day 10: only the day-0 debug entry is past its 5 days (the audit entry has 30, the keep entry 365).
        var first = await OkAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null));
        Assert.Equal(1, first.GetProperty("purged").GetInt32());
        var firstRecord = Assert.Single(first.GetProperty("purgeRecords").EnumerateArray());
        Assert.Equal(6UL, firstRecord.GetProperty("index").GetUInt64());
        await AssertPurgedAsync(writer, 0, ids[0], 6, policyVersion);
        Assert.Equal(leaves[1], await writer.GetByteArrayAsync("/v1/tenants/acme/log/entries/1"));

        // Day 35: the day-0 audit entry (30 days) and the day-10 debug entry (5 days) go; the keep entries and the
        // day-10 audit entry stay. A second pass at once finds nothing more.
        Clock.Advance(TimeSpan.FromDays(25));
        var second = await OkAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null));
        Assert.Equal(2, second.GetProperty("purged").GetInt32());
        var secondRecord = Assert.Single(second.GetProperty("purgeRecords").EnumerateArray());
        var secondIndex = secondRecord.GetProperty("index").GetUInt64();
        Assert.Equal(7UL, secondIndex);
        Assert.Equal(0, (await OkAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null))).GetProperty("purged").GetInt32());
        await AssertPurgedAsync(writer, 1, ids[1], secondIndex, policyVersion);
        await AssertPurgedAsync(writer, 3, ids[3], secondIndex, policyVersion);
        foreach (var kept in new[] { 2, 4, 5 })
        {
            Assert.Equal(leaves[kept], await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{kept}"));
            Assert.Equal(HttpStatusCode.OK, (await writer.GetAsync($"/v1/tenants/acme/events/{ids[kept]}")).StatusCode);
        }

        // The purge record is an entry of the tenant's own log, with the range it examined and what it did.
        using (var record = JsonDocument.Parse(await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{secondIndex}")))
        {
            Assert.Equal("atp.retention.purge.v1", record.RootElement.GetProperty("type").GetString());
            Assert.Equal("log.purge", record.RootElement.GetProperty("action").GetString());
            var data = record.RootElement.GetProperty("data");
            Assert.Equal(2, data.GetProperty("count").GetInt32());
            Assert.Equal(policyVersion, data.GetProperty("policyVersion").GetInt32());
            Assert.Equal(0, data.GetProperty("retainedByHold").GetInt32());
            Assert.True(data.GetProperty("from").GetUInt64() <= 1 && data.GetProperty("to").GetUInt64() >= 3);
        }

        // Every earlier leaf, purged or kept, is included under its old leaf hash in the new checkpoint, which is
        // consistent with the one signed before the purges.
        var verifier = NoteVerifier.Parse((await writer.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(firstNote), [verifier], out var before).IsValid);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(await ServerFixture.WaitForCheckpointAsync(writer, "acme", 8)), [verifier], out var after).IsValid);
        var consistency = await writer.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/consistency?from={before!.Size}&to={after!.Size}");
        Assert.True(ConsistencyProof.Verify(before.Size, after.Size, ProofJson.Hashes(consistency), before.Root, after.Root).IsValid);
        for (var i = 0; i < 6; i++)
        {
            var proof = await writer.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/inclusion?index={i}&size={after.Size}");
            Assert.Equal(MerkleHasher.HashLeaf(leaves[i]).ToBase64(), proof.GetProperty("leafHash").GetString());
            Assert.True(InclusionProof.Verify((ulong)i, after.Size, MerkleHasher.HashLeaf(leaves[i]), ProofJson.Hashes(proof), after.Root).IsValid, $"inclusion of {i}");
        }

        // An entry bundle holding a purged entry is refused rather than served with bytes that fail verification.
        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme/log/tile/entries/000.p/8"), HttpStatusCode.Gone, "purged");

        // Search no longer finds the purged events once the purge records are projected; the kept ones it still finds.
        await ServerFixture.WaitForProjectionAsync(writer, "acme");
        var found = await writer.GetStringAsync("/v1/tenants/acme/events?limit=100");
        foreach (var purged in new[] { 0, 1, 3 })
        {
            Assert.DoesNotContain(ids[purged], found, StringComparison.Ordinal);
            Assert.Empty((await writer.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/events?actor=u-{purged}-{values[purged]}")).GetProperty("items").EnumerateArray());
        }

        foreach (var kept in new[] { 2, 4, 5 })
        {
            Assert.Contains(ids[kept], found, StringComparison.Ordinal);
            Assert.Single((await writer.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/events?actor=u-{kept}-{values[kept]}")).GetProperty("items").EnumerateArray());
        }

        // No file of the data directory holds a purged event's unique data value (only its leaf had it); a kept one's is
        // found (so the scan looks where the leaves are). PostgreSQL keeps dead row versions until VACUUM
        // (docs/operations.md, "Retention"). The scan runs while the server runs, before anything is written over them.
        Assert.Equal(!TestStorage.IsPostgres, second.GetProperty("filesScrubbed").GetBoolean());
        if (!TestStorage.IsPostgres)
        {
            foreach (var purged in new[] { 0, 1, 3 })
            {
                var (purgedFound, keptFound) = ScanDataDirectory(Encoding.UTF8.GetBytes($"data-{values[purged]}"), Encoding.UTF8.GetBytes($"data-{values[2]}"));
                Assert.True(purgedFound is null, $"{purgedFound} still holds the data value of purged entry {purged}");
                Assert.True(keptFound, "the kept event's data value was found in no file: the scan looked in the wrong place");
            }
        }

        // The platform audit log records each pass that purged something.
        using var platformAdmin = _server.Admin;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await platformAdmin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?limit=200&action=retention.purged")).GetProperty("items").GetArrayLength() < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no two retention.purged records in the platform audit log within 20 s");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task The_background_service_purges_on_its_own_each_interval()
    {
        await using var server = await ServerFixture.StartAsync(clock: Clock, settings: new Dictionary<string, string?> { ["Atp:Retention:Interval"] = "00:00:01" });
        using var writer = server.ClientWithKey(await server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        using var alice = server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(server, "acme", "alice@example.com"));
        using var bob = server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(server, "acme", "bob@example.com"));
        await IngestAsync(writer, 0, ("app.debug", "old"));
        Clock.Advance(TimeSpan.FromDays(3));
        await IngestAsync(writer, 1, ("app.debug", "new"));
        var proposal = await OkAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"days":2}""")), HttpStatusCode.Created);
        await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal.GetProperty("id").GetString()}/approve", null));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await writer.GetAsync("/v1/tenants/acme/log/entries/0")).StatusCode != HttpStatusCode.Gone)
        {
            Assert.True(DateTime.UtcNow < deadline, "the background service purged nothing within 20 s");
            await Task.Delay(100);
        }

        Assert.Equal(HttpStatusCode.OK, (await writer.GetAsync("/v1/tenants/acme/log/entries/1")).StatusCode);
        using var record = JsonDocument.Parse(await writer.GetByteArrayAsync("/v1/tenants/acme/log/entries/2"));
        Assert.Equal("atp.retention.purge.v1", record.RootElement.GetProperty("type").GetString());
        Assert.Equal("atp-retention", record.RootElement.GetProperty("actor").GetProperty("id").GetString());
    }

    [Fact]
    public async Task An_entry_a_legal_hold_covers_keeps_its_content_until_the_hold_is_released_and_every_proof_verifies()
    {
        using var writer = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        using var alice = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, "acme", "alice@example.com"));
        using var bob = _server.ClientWithKey(await PolicySteps.TenantAdminKeyAsync(_server, "acme", "bob@example.com"));
        var marker = Guid.NewGuid().ToString("N")[..12];
        string[] values = [$"a{marker}", $"held{marker}", $"c{marker}"];
        await IngestAsync(writer, 0, ("app.debug", values[0]), ("app.debug", values[1]), ("app.debug", values[2]));
        var leaves = new List<byte[]>();
        for (var i = 0; i < 3; i++)
        {
            leaves.Add(await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}"));
        }

        var proposal = await OkAsync(await alice.PostAsync("/v1/tenants/acme/policy/proposals", Proposal("""{"days":5}""")), HttpStatusCode.Created);
        await OkAsync(await bob.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal.GetProperty("id").GetString()}/approve", null));
        var hold = await OkAsync(
            await alice.PostAsJsonAsync("/v1/tenants/acme/holds", new { scope = new { actorId = $"u-1-{values[1]}" }, reason = "matter 2026-117" }), HttpStatusCode.Created);

        // Day 10: all three are past their 5 days; the one the hold covers keeps its content.
        Clock.Advance(TimeSpan.FromDays(10));
        var first = await OkAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null));
        Assert.Equal(2, first.GetProperty("purged").GetInt32());
        Assert.Equal(1, first.GetProperty("retainedByHold").GetInt32());
        var firstRecord = Assert.Single(first.GetProperty("purgeRecords").EnumerateArray()).GetProperty("index").GetUInt64();
        Assert.Equal(HttpStatusCode.Gone, (await writer.GetAsync("/v1/tenants/acme/log/entries/0")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await writer.GetAsync("/v1/tenants/acme/log/entries/2")).StatusCode);
        Assert.Equal(leaves[1], await writer.GetByteArrayAsync("/v1/tenants/acme/log/entries/1"));
        using (var record = JsonDocument.Parse(await writer.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{firstRecord}")))
        {
            Assert.Equal(1, record.RootElement.GetProperty("data").GetProperty("retainedByHold").GetInt32());
        }

        // Released, the held entry goes with the next pass.
        await OkAsync(await alice.PostAsJsonAsync($"/v1/tenants/acme/holds/{hold.GetProperty("id").GetString()}/release", new { reason = "matter closed" }));
        var second = await OkAsync(await alice.PostAsync("/v1/tenants/acme/retention/run", null));
        Assert.Equal(1, second.GetProperty("purged").GetInt32());
        Assert.Equal(HttpStatusCode.Gone, (await writer.GetAsync("/v1/tenants/acme/log/entries/1")).StatusCode);

        // Every entry, purged with or without the hold, is still included under its old leaf hash.
        var verifier = NoteVerifier.Parse((await writer.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(await ServerFixture.WaitForCheckpointAsync(writer, "acme", 5)), [verifier], out var after).IsValid);
        for (var i = 0; i < 3; i++)
        {
            var proof = await writer.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/inclusion?index={i}&size={after!.Size}");
            Assert.True(InclusionProof.Verify((ulong)i, after.Size, MerkleHasher.HashLeaf(leaves[i]), ProofJson.Hashes(proof), after.Root).IsValid, $"inclusion of {i}");
        }
    }

    private static async Task AssertPurgedAsync(HttpClient client, int index, string eventId, ulong recordIndex, int policyVersion)
    {
        foreach (var path in new[] { $"/v1/tenants/acme/log/entries/{index}", $"/v1/tenants/acme/events/{eventId}" })
        {
            var problem = await ProblemAssert.IsProblemAsync(await client.GetAsync(path), HttpStatusCode.Gone, "purged");
            var record = problem.GetProperty("purgeRecord");
            Assert.Equal(recordIndex, record.GetProperty("index").GetUInt64());
            Assert.Equal(policyVersion, record.GetProperty("policyVersion").GetInt32());
            Assert.True(record.GetProperty("from").GetUInt64() <= (ulong)index && (ulong)index <= record.GetProperty("to").GetUInt64());
            Assert.True(record.GetProperty("count").GetInt32() > 0);
            Assert.Equal(JsonValueKind.String, record.GetProperty("id").ValueKind);
            Assert.Equal(JsonValueKind.String, record.GetProperty("purgedAt").ValueKind);
        }
    }

    private static async Task IngestAsync(HttpClient writer, int offset, params (string Type, string Value)[] events)
    {
        // One request per event, so each is its own append (and the indexes follow the order given).
        for (var i = 0; i < events.Length; i++)
        {
            var (type, value) = events[i];
            var actor = $"u-{offset + i}-{value}";
            var body = "{\"type\":\"" + type + "\",\"occurredAt\":\"2026-11-26T10:15:30Z\",\"actor\":{\"type\":\"user\",\"id\":\"" + actor
                + "\"},\"action\":\"document.update\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-" + value
                + "\"}],\"outcome\":\"success\",\"data\":{\"note\":\"data-" + value + "\"}}";
            var response = await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body));
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        }
    }

    private (string? PurgedFoundIn, bool KeptFound) ScanDataDirectory(byte[] purged, byte[] kept)
    {
        string? purgedFoundIn = null;
        var keptFound = false;
        foreach (var path in Directory.EnumerateFiles(_server.DataDirectory, "*", SearchOption.AllDirectories))
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var content = new MemoryStream();
            file.CopyTo(content);
            var bytes = content.GetBuffer().AsSpan(0, (int)content.Length);
            purgedFoundIn ??= bytes.IndexOf(purged) >= 0 ? path : null;
            keptFound |= bytes.IndexOf(kept) >= 0;
        }

        return (purgedFoundIn, keptFound);
    }

    private static async Task<JsonElement> OkAsync(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static StringContent Proposal(string retention) =>
        ServerFixture.Json($$"""{"changes":{"retention":{{retention}}},"reason":"keep debug events 5 days"}""");
}
