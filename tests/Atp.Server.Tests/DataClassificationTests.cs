using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Core.Classification;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// Data fields a tenant's policy classifies (docs/classification.md, "Classified data fields"), over real Kestrel on the
/// configured engine, in a cell that leaves the envelope's fields in clear: once a second admin approves the
/// classification, the named values are sealed at ingest under the actor's data key, opened only for <c>pii:read</c>,
/// verifiable offline from the tokens, absent from the store's files, and erased with the subject's key.
/// </summary>
public sealed class DataClassificationTests : IAsyncLifetime
{
    private const string Classification = """{"classification":{"pii":["/data/email","/data/address","/data/phones/1","/data/a~1b"]}}""";

    private readonly string _marker = Guid.NewGuid().ToString("N")[..12];
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_approved_classification_seals_data_fields_at_ingest_for_pii_read_callers_only_and_they_verify_from_their_tokens()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));

        // Before approval, proposed or not, data is stored as sent (so the checks below can fail).
        _ = await IngestAsync(writer, Event("user-1", 0));
        var proposal = await PolicySteps.ProposeAsync(admin, "acme", Classification);
        _ = await IngestAsync(writer, Event("user-1", 1));
        using var second = _server.ClientWithKey(await PolicySteps.PlatformKeyAsync(_server, "second-approver"));
        var approved = await second.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal}/approve", null);
        Assert.True(approved.StatusCode == HttpStatusCode.OK, await approved.Content.ReadAsStringAsync());
        var policy = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(["/data/email", "/data/address", "/data/phones/1", "/data/a~1b"], policy.GetProperty("active").GetProperty("document").GetProperty("classification").GetProperty("pii").EnumerateArray().Select(p => p.GetString()));

        var sealedIds = new List<string>();
        for (var i = 2; i < 5; i++)
        {
            sealedIds.Add(await IngestAsync(writer, Event(i == 4 ? "user-2" : "user-1", i)));
        }

        _ = await IngestAsync(writer, """{"type":"app.audit","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"user-3"},"action":"plan.change","data":{"plan":"pro"}}""");
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 6);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");

        var leaves = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            leaves.Add(Encoding.UTF8.GetString(await admin.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}")));
        }

        Assert.Contains(Email(0), leaves[0], StringComparison.Ordinal);
        Assert.Contains(Email(1), leaves[1], StringComparison.Ordinal);
        for (var i = 2; i < 5; i++)
        {
            using var leaf = JsonDocument.Parse(leaves[i]);
            var data = leaf.RootElement.GetProperty("data");
            Assert.DoesNotContain(_marker, leaves[i], StringComparison.Ordinal);
            Assert.True(FieldToken.IsToken(data.GetProperty("email").GetString()), leaves[i]);
            Assert.True(FieldToken.IsToken(data.GetProperty("address").GetString()), "a classified object is sealed whole");
            Assert.Equal("pro", data.GetProperty("plan").GetString());
            Assert.Equal("+33 1 00 00 00 00", data.GetProperty("phones")[0].GetString());
            Assert.True(FieldToken.IsToken(data.GetProperty("phones")[1].GetString()), "an array element is sealed by its index");
            Assert.True(FieldToken.IsToken(data.GetProperty("a/b").GetString()), "a member name with a slash is named by ~1");
        }

        Assert.DoesNotContain(FieldToken.Prefix, leaves[5], StringComparison.Ordinal);

        // A reader without pii:read, the tenant admin included, sees the tokens; a pii:read reader the values, with the
        // tokens in sealed by pointer.
        var adminView = await admin.GetStringAsync($"/v1/tenants/acme/events/{sealedIds[0]}?verify=true");
        Assert.DoesNotContain(_marker, adminView, StringComparison.Ordinal);
        Assert.DoesNotContain("\"sealed\"", adminView, StringComparison.Ordinal);
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var opened = JsonNode.Parse(await piiReader.GetStringAsync($"/v1/tenants/acme/events/{sealedIds[0]}?verify=true"))!["event"]!;
        Assert.Equal(Email(2), opened["event"]!["data"]!["email"]!.GetValue<string>());
        Assert.Equal($"{_marker} street 2", opened["event"]!["data"]!["address"]!["street"]!.GetValue<string>());
        Assert.Equal($"{_marker} phone", opened["event"]!["data"]!["phones"]![1]!.GetValue<string>());
        Assert.Equal($"{_marker} slash", opened["event"]!["data"]!["a/b"]!.GetValue<string>());
        Assert.Equal(["/data/address", "/data/a~1b", "/data/email", "/data/phones/1"], opened["sealed"]!.AsObject().Select(f => f.Key).Order(StringComparer.Ordinal));
        var page = await piiReader.GetStringAsync("/v1/tenants/acme/events?verify=true&limit=10");
        Assert.Contains(Email(3), page, StringComparison.Ordinal);
        Assert.DoesNotContain(_marker, await admin.GetStringAsync("/v1/tenants/acme/events?limit=10&actor=user-2"), StringComparison.Ordinal);

        // Offline, with no key: the pii:read page verifies against the signed root from its tokens; a changed token fails.
        using var anonymous = _server.ClientWithKey(null);
        var verifierKey = (await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
        var altered = JsonNode.Parse(page)!;
        var alteredItem = altered["items"]!.AsArray().First(item => item!["sealed"] is not null)!;
        var token = alteredItem["sealed"]!["/data/email"]!.GetValue<string>();
        alteredItem["sealed"]!["/data/email"] = token[..^3] + (token[^3] == 'A' ? 'B' : 'A') + token[^2..];
        var work = Directory.CreateTempSubdirectory("atp-data-classification-").FullName;
        try
        {
            var pageFile = Path.Combine(work, "page.json");
            var alteredFile = Path.Combine(work, "altered.json");
            await File.WriteAllTextAsync(pageFile, page);
            await File.WriteAllTextAsync(alteredFile, altered.ToJsonString());
            var none = new Dictionary<string, string>();
            var verified = await AuditorTests.AtpAsync(none, "verify", "events", pageFile, "--key", verifierKey);
            Assert.True(verified.ExitCode == 0, verified.Error);
            Assert.Contains("12 classified fields were verified as the sealed tokens the log holds", verified.Output, StringComparison.Ordinal);
            var tampered = await AuditorTests.AtpAsync(none, "verify", "events", alteredFile, "--key", verifierKey);
            Assert.Equal(1, tampered.ExitCode);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        // No file of the data directory (or dump of the database) holds a sealed value; the one stored before the
        // classification is found, so the scan looks in the right place.
        var stored = await StoredBytesAsync();
        foreach (var i in new[] { 2, 3, 4 })
        {
            Assert.False(Holds(stored, Email(i)), $"the store holds the sealed value {Email(i)}");
            Assert.False(Holds(stored, $"{_marker} street {i}"), "the store holds a sealed address");
        }

        Assert.True(Holds(stored, Email(0)), "the value stored before the classification was not found: the scan looked in the wrong place");

        // Erasing user-1 leaves its sealed data fields tokens for pii:read; user-2's still open.
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "user-1", reason = "request #1" })).StatusCode);
        var erased = await piiReader.GetStringAsync($"/v1/tenants/acme/events/{sealedIds[0]}");
        Assert.DoesNotContain(_marker, erased, StringComparison.Ordinal);
        Assert.Contains(Email(4), await piiReader.GetStringAsync($"/v1/tenants/acme/events/{sealedIds[2]}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_fields_about_a_target_the_policy_names_are_sealed_under_that_subjects_key_and_erased_with_it()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var proposal = await PolicySteps.ProposeAsync(admin, "acme", """{"classification":{"pii":["/data/email"],"subjectTargetType":"customer"}}""");
        using var second = _server.ClientWithKey(await PolicySteps.PlatformKeyAsync(_server, "second-approver"));
        var approved = await second.PostAsync($"/v1/tenants/acme/policy/proposals/{proposal}/approve", null);
        Assert.True(approved.StatusCode == HttpStatusCode.OK, await approved.Content.ReadAsStringAsync());
        var classification = (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy")).GetProperty("active").GetProperty("document").GetProperty("classification");
        Assert.Equal("customer", classification.GetProperty("subjectTargetType").GetString());

        // An agent changes customer S's email (S is the data subject, not the agent); S changes it itself; the agent
        // changes customer T's; the agent changes something with no customer target (its own data: the actor's key).
        string[] ids =
        [
            await IngestAsync(writer, TargetEvent("agent-1", "customer", "cust-s", 0)),
            await IngestAsync(writer, TargetEvent("cust-s", "document", "doc-1", 1)),
            await IngestAsync(writer, TargetEvent("agent-1", "customer", "cust-t", 2)),
            await IngestAsync(writer, TargetEvent("agent-1", "document", "doc-2", 3)),
        ];
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 4);
        var keyIds = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            using var leaf = JsonDocument.Parse(await admin.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}"));
            Assert.True(FieldToken.TryParse(leaf.RootElement.GetProperty("data").GetProperty("email").GetString(), out var keyId, out _), $"entry {i}'s email is not sealed");
            keyIds.Add(keyId);
        }

        Assert.Equal(keyIds[0], keyIds[1]);
        Assert.Equal(4 - 1, keyIds.Distinct().Count());
        for (var i = 0; i < 4; i++)
        {
            Assert.Contains(Email(i), await piiReader.GetStringAsync($"/v1/tenants/acme/events/{ids[i]}"), StringComparison.Ordinal);
        }

        // Erasing customer S destroys the key of both its emails, the one the agent's event holds included.
        var erasure = await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "cust-s", reason = "request #2" });
        Assert.Equal(HttpStatusCode.Created, erasure.StatusCode);
        Assert.Equal(keyIds[0], (await erasure.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("subjectKeyId").GetString());
        foreach (var i in new[] { 0, 1 })
        {
            var shown = await piiReader.GetStringAsync($"/v1/tenants/acme/events/{ids[i]}");
            Assert.DoesNotContain(Email(i), shown, StringComparison.Ordinal);
            Assert.Contains(FieldToken.Prefix, shown, StringComparison.Ordinal);
        }

        foreach (var i in new[] { 2, 3 })
        {
            Assert.Contains(Email(i), await piiReader.GetStringAsync($"/v1/tenants/acme/events/{ids[i]}"), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("""{"pii":["/actor/name"]}""")]
    [InlineData("""{"pii":["data/email"]}""")]
    [InlineData("""{"pii":["/data/"]}""")]
    [InlineData("""{"pii":["/data/a~2b"]}""")]
    [InlineData("""{"pii":["/data/email","/data/email"]}""")]
    [InlineData("""{"pii":"/data/email"}""")]
    [InlineData("""{"secret":["/data/password"]}""")]
    [InlineData("""["/data/email"]""")]
    [InlineData("""{"pii":["/data/email"],"subjectTargetType":""}""")]
    [InlineData("""{"pii":["/data/email"],"subjectTargetType":7}""")]
    public async Task A_classification_that_is_not_a_list_of_pointers_into_data_is_refused_with_nothing_stored(string classification)
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        var response = await admin.PostAsync("/v1/tenants/acme/policy/proposals", ServerFixture.Json($$"""{"changes":{"classification":{{classification}}},"reason":"test"}"""));
        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        var policy = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/policy");
        Assert.Equal(0, policy.GetProperty("pending").GetArrayLength());
    }

    private async Task<string> StoredBytesAsync()
    {
        if (TestStorage.IsPostgres)
        {
            return Encoding.UTF8.GetString(await ClassifiedFieldTests.DumpDatabaseAsync(_server));
        }

        var all = new StringBuilder();
        foreach (var path in Directory.EnumerateFiles(_server.DataDirectory, "*", SearchOption.AllDirectories))
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var content = new MemoryStream();
            await file.CopyToAsync(content);
            all.Append(Encoding.UTF8.GetString(content.GetBuffer(), 0, (int)content.Length));
        }

        return all.ToString();
    }

    // As text, or as the hex a PostgreSQL dump writes bytea in (leaves are bytea there).
    private static bool Holds(string stored, string value) =>
        stored.Contains(value, StringComparison.Ordinal) || stored.Contains(Convert.ToHexStringLower(Encoding.UTF8.GetBytes(value)), StringComparison.Ordinal);

    private string Email(int i) => $"{_marker}-{i}@example.com";

    private string Event(string actor, int i) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actor}\"}},\"action\":\"profile.update\","
        + $"\"data\":{{\"a/b\":\"{_marker} slash\",\"phones\":[\"+33 1 00 00 00 00\",\"{_marker} phone\"],\"email\":\"{Email(i)}\",\"address\":{{\"street\":\"{_marker} street {i}\",\"city\":\"Lyon\"}},\"plan\":\"pro\"}}}}";

    private string TargetEvent(string actor, string targetType, string targetId, int i) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actor}\"}},\"action\":\"profile.update\","
        + $"\"targets\":[{{\"type\":\"{targetType}\",\"id\":\"{targetId}\"}}],\"data\":{{\"email\":\"{Email(i)}\"}}}}";

    private static async Task<string> IngestAsync(HttpClient client, string json)
    {
        var response = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(json));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts")[0].GetProperty("id").GetString()!;
    }
}
