using System.Buffers;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Core.Classification;
using Atp.Core.Keys;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Data subject access and portability (docs/api.md, "Data subject access and portability") over real Kestrel and the
/// configured engine, with sealing on: every event naming the subject as actor or target, once each, every page's
/// proofs against the one checkpoint the first page pinned; clear values only for pii:read; tokens after an erasure.
/// </summary>
public sealed class SubjectAccessTests : IAsyncLifetime
{
    private readonly string _marker = Guid.NewGuid().ToString("N")[..10];
    private ServerFixture _server = null!;
    private string _admin = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Classification:SealEnvelopeFields"] = "true" });
        _admin = await _server.CreateTenantWithKeyAsync("acme");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Every_event_naming_the_subject_is_listed_once_and_every_page_verifies_against_the_first_pages_checkpoint()
    {
        using var admin = _server.ClientWithKey(_admin);
        var globexKey = await _server.CreateTenantWithKeyAsync("globex");
        using var globex = _server.ClientWithKey(globexKey);
        var events = new[]
        {
            Event("s-1", "Ann"),                       // 0: actor
            Event("u-2", "Bob", "doc-1", "s-1"),       // 1: second target
            Event("s-1", "Ann", "s-1"),                // 2: actor and target
            Event("u-2", "Bob", "s-1", "s-1"),         // 3: two targets of different types
            Event("u-2", "Bob", "doc-1"),              // 4: another subject's
            Event("s-10", "Cy", "s-"),                 // 5: ids that only begin alike
            Event("s-1", "Ann", "doc-2"),              // 6: actor
        };
        await IngestAsync(admin, "acme", events);

        // The same subject id in another tenant is never in acme's answer.
        await IngestAsync(globex, "globex", Event("s-1", "Other"), Event("u-9", "Other", "s-1"));
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 7);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        var verifier = await VerifierAsync();

        var first = await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/subjects/s-1/events?limit=2");
        var note = first.GetProperty("checkpoint").GetString()!;
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint).IsValid);
        Assert.Equal(7UL, first.GetProperty("snapshot").GetUInt64());
        Assert.Equal("s-1", first.GetProperty("subject").GetString());

        // Events appended and sealed after the first page neither appear in later pages nor move their checkpoint.
        await IngestAsync(admin, "acme", Event("s-1", "Ann"));
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 8);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");

        var listed = new List<ulong>();
        var page = first;
        for (var pages = 1; ; pages++)
        {
            Assert.Equal(note, page.GetProperty("checkpoint").GetString());
            Assert.False(page.TryGetProperty("unavailable", out _));
            foreach (var item in page.GetProperty("items").EnumerateArray())
            {
                // Without pii:read the event is the leaf: its hash is what the proof leads from.
                var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(item.GetProperty("event").GetRawText()));
                var inclusion = item.GetProperty("inclusion");
                Assert.Equal(checkpoint!.Size, inclusion.GetProperty("treeSize").GetUInt64());
                Assert.Equal(MerkleHasher.HashLeaf(leaf).ToBase64(), item.GetProperty("leafHash").GetString());
                Assert.True(InclusionProof.Verify(item.GetProperty("index").GetUInt64(), checkpoint.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(inclusion), checkpoint.Root).IsValid);
                Assert.False(item.TryGetProperty("sealed", out _));
                listed.Add(item.GetProperty("index").GetUInt64());
            }

            if (!page.TryGetProperty("nextCursor", out var next))
            {
                Assert.Equal(3, pages);
                break;
            }

            page = await reader.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/subjects/s-1/events?limit=2&cursor={Uri.EscapeDataString(next.GetString()!)}");
        }

        Assert.Equal(new ulong[] { 0, 1, 2, 3, 6 }, listed);

        // A new listing pins the newer checkpoint and lists the later event too.
        var fresh = await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/subjects/s-1/events?limit=1000");
        Assert.Equal(new ulong[] { 0, 1, 2, 3, 6, 7 }, Indexes(fresh));
        Assert.NotEqual(note, fresh.GetProperty("checkpoint").GetString());
        Assert.Equal(new ulong[] { 1, 3, 4 }, Indexes(await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/subjects/u-2/events")));
        Assert.Empty(Indexes(await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/subjects/s/events")));

        await ServerFixture.WaitForCheckpointAsync(globex, "globex", 2);
        await ServerFixture.WaitForProjectionAsync(globex, "globex");
        Assert.Equal(new ulong[] { 0, 1 }, Indexes(await globex.GetFromJsonAsync<JsonElement>("/v1/tenants/globex/subjects/s-1/events")));
    }

    [Fact]
    public async Task A_pii_read_caller_gets_clear_values_with_their_tokens_others_the_tokens_and_after_an_erasure_everyone_the_tokens()
    {
        using var admin = _server.ClientWithKey(_admin);
        await IngestAsync(admin, "acme", Event("s-7", $"Zoë {_marker}"), Event("u-2", "Bob", "s-7"), Event("s-7", $"Zoë {_marker}", "doc-1"), Event("u-3", $"Kept {_marker}"));
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 4);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var verifier = await VerifierAsync();
        const string Path = "/v1/tenants/acme/subjects/s-7/events";

        var plain = await reader.GetStringAsync(Path);
        Assert.DoesNotContain(_marker, plain, StringComparison.Ordinal);
        Assert.DoesNotContain("\"sealed\"", plain, StringComparison.Ordinal);
        Assert.Contains(FieldToken.Prefix, plain, StringComparison.Ordinal);

        var opened = JsonNode.Parse(await piiReader.GetStringAsync(Path))!;
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(opened["checkpoint"]!.GetValue<string>()), [verifier], out var checkpoint).IsValid);
        var items = opened["items"]!.AsArray();
        Assert.Equal(new ulong[] { 0, 1, 2 }, items.Select(i => i!["index"]!.GetValue<ulong>()));
        foreach (var item in items)
        {
            var index = item!["index"]!.GetValue<ulong>();
            var sealedFields = item["sealed"]!.AsObject();
            if (index != 1)
            {
                Assert.Equal($"Zoë {_marker}", item["event"]!["actor"]!["name"]!.GetValue<string>());
            }

            // The tokens put back give the leaf, and the leaf's proof verifies against the page's checkpoint.
            var leaf = PutBack(item["event"]!, sealedFields);
            Assert.True(InclusionProof.Verify(index, checkpoint!.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(JsonSerializer.SerializeToElement(item["inclusion"])), checkpoint.Root).IsValid);
        }

        var erased = await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "s-7", reason = "GDPR art. 17 request #1" });
        Assert.Equal(HttpStatusCode.Created, erased.StatusCode);
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 5);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");

        // Still listed, every one, with the erased subject's fields as tokens even for pii:read; other subjects unchanged.
        var after = JsonNode.Parse(await piiReader.GetStringAsync(Path))!;
        Assert.Equal(new ulong[] { 0, 1, 2 }, after["items"]!.AsArray().Select(i => i!["index"]!.GetValue<ulong>()));
        Assert.DoesNotContain(_marker, after.ToJsonString(), StringComparison.Ordinal);
        Assert.StartsWith(FieldToken.Prefix, after["items"]![0]!["event"]!["actor"]!["name"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains($"Kept {_marker}", await piiReader.GetStringAsync("/v1/tenants/acme/subjects/u-3/events"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_subjects_limits_cursors_and_parameters_are_400_a_writer_key_or_another_tenant_403()
    {
        using var admin = _server.ClientWithKey(_admin);
        await IngestAsync(admin, "acme", Event("s-1", "Ann"), Event("s-1", "Ann"), Event("s-2", "Bo"));
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 3);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        var cursor = (await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/subjects/s-1/events?limit=1")).GetProperty("nextCursor").GetString()!;
        var searchCursor = (await reader.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?limit=1")).GetProperty("nextCursor").GetString()!;
        var altered = (cursor[0] == '2' ? "3" : "2") + cursor[1..];

        foreach (var path in new[]
        {
            $"/v1/tenants/acme/subjects/{new string('s', 257)}/events",
            "/v1/tenants/acme/subjects/%20/events",
            "/v1/tenants/acme/subjects/s-1%09x/events",
            "/v1/tenants/acme/subjects/s-1/events?limit=0",
            "/v1/tenants/acme/subjects/s-1/events?limit=1001",
            "/v1/tenants/acme/subjects/s-1/events?limit=ten",
            "/v1/tenants/acme/subjects/s-1/events?limit=1&limit=2",
            "/v1/tenants/acme/subjects/s-1/events?verify=true",
            "/v1/tenants/acme/subjects/s-1/events?cursor=not-a-cursor",
            $"/v1/tenants/acme/subjects/s-1/events?cursor={Uri.EscapeDataString(altered)}",
            $"/v1/tenants/acme/subjects/s-2/events?cursor={Uri.EscapeDataString(cursor)}",
            $"/v1/tenants/acme/subjects/s-1/events?cursor={Uri.EscapeDataString(searchCursor)}",
        })
        {
            await ProblemAssert.IsProblemAsync(await reader.GetAsync(path), HttpStatusCode.BadRequest, "validation");
        }

        Assert.Single(Indexes(await reader.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/subjects/s-1/events?limit=1&cursor={Uri.EscapeDataString(cursor)}")));
        Assert.Empty(Indexes(await reader.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/subjects/{new string('s', 256)}/events")));

        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite));
        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme/subjects/s-1/events"), HttpStatusCode.Forbidden, "forbidden");

        // Another or an unknown tenant is refused as on every tenant endpoint (a tenant's key learns nothing of others),
        // whatever the search path answers for the same credential.
        foreach (var tenant in new[] { "nobody", "globex" })
        {
            var searched = await reader.GetAsync($"/v1/tenants/{tenant}/events");
            await ProblemAssert.IsProblemAsync(await reader.GetAsync($"/v1/tenants/{tenant}/subjects/s-1/events"), searched.StatusCode, "forbidden");
        }
    }

    private static ulong[] Indexes(JsonElement page) => [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64())];

    private async Task<NoteVerifier> VerifierAsync()
    {
        using var anonymous = _server.ClientWithKey(null);
        var keys = await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        return NoteVerifier.Parse(keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
    }

    private static async Task IngestAsync(HttpClient client, string tenant, params string[] events)
    {
        var response = await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json("{\"events\":[" + string.Join(',', events) + "]}"));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    // Targets alternate between two types, so an event naming the subject twice has two target rows.
    private static string Event(string actorId, string name, params string[] targets) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actorId}\",\"name\":{JsonSerializer.Serialize(name)}}},"
        + "\"action\":\"document.update\",\"targets\":[" + string.Join(',', targets.Select((t, i) => $"{{\"type\":\"{(i % 2 == 0 ? "document" : "user")}\",\"id\":\"{t}\"}}")) + "],"
        + "\"outcome\":\"success\",\"context\":{\"ip\":\"203.0.113.9\"}}";

    private static byte[] PutBack(JsonNode shown, JsonObject sealedFields)
    {
        using var document = JsonDocument.Parse(shown.ToJsonString());
        var output = new ArrayBufferWriter<byte>();
        Assert.Null(SealedFields.TryPutBack(document.RootElement, sealedFields.Select(f => KeyValuePair.Create(f.Key, f.Value!.GetValue<string>())), output));
        return JsonCanonicalizer.Canonicalize(output.WrittenMemory);
    }
}
