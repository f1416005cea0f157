using System.Buffers;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Core.Classification;
using Atp.Core.Keys;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Reading sealed fields back (docs/classification.md, "Reading classified fields"): over real Kestrel, with sealing on,
/// callers holding <c>pii:read</c> see the clear values with the committed tokens in <c>sealed</c>; every other caller,
/// admins included, sees the leaf's tokens; tokens of another tenant, another field or a missing key stay tokens.
/// </summary>
public sealed class PiiReadTests : IAsyncLifetime
{
    private const string Sealing = "Atp:Classification:SealEnvelopeFields";

    private static readonly string[] Pointers = ["/actor/name", "/context/ip", "/context/userAgent"];

    private readonly string _marker = Guid.NewGuid().ToString("N")[..10];
    private OidcProvider _oidc = null!;
    private ServerFixture _server = null!;
    private string _admin = null!;

    public async Task InitializeAsync()
    {
        _oidc = await OidcProvider.StartAsync();
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>(_oidc.ServerSettings()) { [Sealing] = "true" });
        _admin = await _server.CreateTenantWithKeyAsync("acme");
        await _server.CreateTenantWithKeyAsync("globex");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _oidc.DisposeAsync();
    }

    [Fact]
    public async Task Every_read_path_shows_clear_values_and_their_tokens_only_to_pii_read()
    {
        using var admin = _server.ClientWithKey(_admin);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await IngestAsync(admin, "acme", PersonalEvent(i)));
        }

        var plainId = await IngestAsync(admin, "acme", ServerFixture.Event(actor: "svc-1").Replace(",\"context\":{\"ip\":\"203.0.113.7\"}", "", StringComparison.Ordinal));
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 4);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var leaves = new List<byte[]>();
        for (var index = 0; index < 4; index++)
        {
            leaves.Add(await admin.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{index}"));
        }

        var paths = ids.Concat([plainId]).SelectMany(id => new[] { $"/v1/tenants/acme/events/{id}", $"/v1/tenants/acme/events/{id}?proof=true" })
            .Concat(["/v1/tenants/acme/events?limit=10", "/v1/tenants/acme/events?verify=true&limit=10", "/v1/tenants/acme/events?actor=user-1&order=asc"]).ToArray();
        foreach (var path in paths)
        {
            // Callers without pii:read, the tenant admin included, get what they got before: the tokens, no sealed.
            foreach (var client in new[] { reader, admin })
            {
                var body = await client.GetStringAsync(path);
                Assert.DoesNotContain(_marker, body, StringComparison.Ordinal);
                Assert.DoesNotContain("\"sealed\"", body, StringComparison.Ordinal);
                foreach (var item in Items(JsonNode.Parse(body)!))
                {
                    Assert.Equal(leaves[item["index"]!.GetValue<int>()], JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(item["event"]!.ToJsonString())));
                }
            }

            var opened = JsonNode.Parse(await piiReader.GetStringAsync(path))!;
            foreach (var item in Items(opened))
            {
                var index = item["index"]!.GetValue<int>();
                var shown = item["event"]!;
                if (index == 3)
                {
                    // No token in the leaf: the same event for everyone, and nothing sealed.
                    Assert.Null(item["sealed"]);
                    Assert.Equal(leaves[3], JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(shown.ToJsonString())));
                    continue;
                }

                Assert.Equal($"Zoë Quartermaine {_marker}-{index}", shown["actor"]!["name"]!.GetValue<string>());
                Assert.Equal($"198.51.100.{index}", shown["context"]!["ip"]!.GetValue<string>());
                Assert.Equal($"Mozilla/5.0 ({_marker}-{index})", shown["context"]!["userAgent"]!.GetValue<string>());
                Assert.Equal("req-1", shown["context"]!["requestId"]!.GetValue<string>());

                // sealed holds exactly the leaf's tokens, and putting them back gives the leaf.
                using var leaf = JsonDocument.Parse(leaves[index]);
                var sealedFields = item["sealed"]!.AsObject();
                Assert.Equal(Pointers, sealedFields.Select(f => f.Key).Order(StringComparer.Ordinal));
                foreach (var pointer in Pointers)
                {
                    var parts = pointer.Split('/');
                    Assert.Equal(leaf.RootElement.GetProperty(parts[1]).GetProperty(parts[2]).GetString(), sealedFields[pointer]!.GetValue<string>());
                }

                Assert.Equal(leaves[index], PutBack(shown, sealedFields));
            }
        }

        // The leaf endpoint serves the exact leaf bytes to every caller: its contract is the bytes the tree commits to.
        var entry = await piiReader.GetAsync("/v1/tenants/acme/log/entries/0");
        var bytes = await entry.Content.ReadAsByteArrayAsync();
        Assert.Equal(leaves[0], bytes);
        Assert.Equal(MerkleHasher.HashLeaf(bytes).ToBase64(), entry.Headers.GetValues("Leaf-Hash").Single());
        Assert.DoesNotContain(_marker, Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_atp_command_verifies_pages_read_with_and_without_pii_read_and_fails_an_altered_token()
    {
        using var admin = _server.ClientWithKey(_admin);
        string id = "";
        for (var i = 0; i < 5; i++)
        {
            id = await IngestAsync(admin, "acme", PersonalEvent(i));
        }

        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 5);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
        using var anonymous = _server.ClientWithKey(null);
        var key = (await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var opened = await piiReader.GetStringAsync("/v1/tenants/acme/events?verify=true&limit=10");
        var one = await piiReader.GetStringAsync($"/v1/tenants/acme/events/{id}?verify=true");
        var sealedOnly = await admin.GetStringAsync("/v1/tenants/acme/events?verify=true&limit=10");
        Assert.Contains(_marker, opened, StringComparison.Ordinal);
        Assert.Contains(_marker, one, StringComparison.Ordinal);

        var altered = JsonNode.Parse(opened)!;
        var sealedFields = altered["items"]![2]!["sealed"]!.AsObject();
        var token = sealedFields["/context/ip"]!.GetValue<string>();
        sealedFields["/context/ip"] = token[..^3] + (token[^3] == 'A' ? 'B' : 'A') + token[^2..];
        var work = Directory.CreateTempSubdirectory("atp-pii-verify-").FullName;
        try
        {
            var files = new[] { opened, one, sealedOnly, altered.ToJsonString() }.Select((text, i) =>
            {
                var file = Path.Combine(work, $"response-{i}.json");
                File.WriteAllText(file, text);
                return file;
            }).ToArray();
            var none = new Dictionary<string, string>();

            var page = await AuditorTests.AtpAsync(none, "verify", "events", files[0], "--key", key);
            var single = await AuditorTests.AtpAsync(none, "verify", "events", files[1], "--key", key);
            var withoutPiiRead = await AuditorTests.AtpAsync(none, "verify", "events", files[2], "--key", key);
            var tampered = await AuditorTests.AtpAsync(none, "verify", "events", files[3], "--key", key);

            Assert.True(page.ExitCode == 0, page.Error);
            Assert.StartsWith("verified: 5 events against checkpoint ", page.Output, StringComparison.Ordinal);
            Assert.Contains("15 classified fields were verified as the sealed tokens the log holds", page.Output, StringComparison.Ordinal);
            Assert.True(single.ExitCode == 0, single.Error);
            Assert.Contains("3 classified fields were verified", single.Output, StringComparison.Ordinal);
            Assert.True(withoutPiiRead.ExitCode == 0, withoutPiiRead.Error);
            Assert.DoesNotContain("classified", withoutPiiRead.Output, StringComparison.Ordinal);
            Assert.Equal(1, tampered.ExitCode);
            Assert.Contains("(item 2): the event hashes to ", tampered.Error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task The_oidc_role_atp_pii_reader_grants_pii_read_and_no_other_role_implies_it()
    {
        using var admin = _server.ClientWithKey(_admin);
        var id = await IngestAsync(admin, "acme", PersonalEvent(0));
        var path = $"/v1/tenants/acme/events/{id}";

        using var auditor = _server.ClientWithKey(_oidc.Token("alice", "acme", ["atp.auditor"]));
        using var tenantAdmin = _server.ClientWithKey(_oidc.Token("bob", "acme", ["atp.tenant-admin"]));
        using var piiAuditor = _server.ClientWithKey(_oidc.Token("carol", "acme", ["atp.auditor", "atp.pii-reader"]));
        using var piiOnly = _server.ClientWithKey(_oidc.Token("dave", "acme", ["atp.pii-reader"]));

        foreach (var client in new[] { auditor, tenantAdmin })
        {
            var body = await client.GetStringAsync(path);
            Assert.DoesNotContain(_marker, body, StringComparison.Ordinal);
            Assert.Contains(FieldToken.Prefix, body, StringComparison.Ordinal);
            Assert.DoesNotContain("\"sealed\"", body, StringComparison.Ordinal);
        }

        var opened = (await piiAuditor.GetFromJsonAsync<JsonElement>(path)).GetProperty("event");
        Assert.Equal($"Zoë Quartermaine {_marker}-0", opened.GetProperty("event").GetProperty("actor").GetProperty("name").GetString());
        Assert.Equal(3, opened.GetProperty("sealed").EnumerateObject().Count());

        // pii:read changes what a reader sees; it does not make one.
        await ProblemAssert.IsProblemAsync(await piiOnly.GetAsync(path), HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Tokens_of_another_tenant_another_field_or_a_missing_key_stay_tokens()
    {
        using var acme = _server.ClientWithKey(_admin);
        var sourceId = await IngestAsync(acme, "acme", PersonalEvent(0));
        using var sourceLeaf = JsonDocument.Parse(await acme.GetByteArrayAsync("/v1/tenants/acme/log/entries/0"));
        var nameToken = sourceLeaf.RootElement.GetProperty("actor").GetProperty("name").GetString()!;
        var ipToken = sourceLeaf.RootElement.GetProperty("context").GetProperty("ip").GetString()!;
        var agentToken = sourceLeaf.RootElement.GetProperty("context").GetProperty("userAgent").GetString()!;
        Assert.StartsWith(FieldToken.Prefix, nameToken, StringComparison.Ordinal);

        // Sealing off, so the copied tokens are stored as sent (with it on they would be sealed again, as values).
        _server.Settings[Sealing] = "false";
        await _server.RestartAsync();
        using var acmeAfter = _server.ClientWithKey(_admin);
        using var globexAdmin = _server.ClientWithKey(await _server.CreateKeyAsync("globex", Scopes.EventsWrite, Scopes.TenantAdmin));
        var copiedId = await IngestAsync(globexAdmin, "globex", TokenEvent(nameToken, agentToken));
        var missingKey = FieldToken.Prefix + "AAAAAAAAAAAAAAAAAAAAAA:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(40)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var movedId = await IngestAsync(acmeAfter, "acme", TokenEvent(ipToken, missingKey));

        using var globexReader = _server.ClientWithKey(await _server.CreateKeyAsync("globex", Scopes.EventsRead, Scopes.PiiRead));
        using var acmeReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));

        // Another tenant's token: globex holds no key under its id, and the associated data names acme anyway.
        var copied = await ItemAsync(globexReader, $"/v1/tenants/globex/events/{copiedId}");
        Assert.Equal(nameToken, copied["event"]!["actor"]!["name"]!.GetValue<string>());
        Assert.Equal(agentToken, copied["event"]!["context"]!["userAgent"]!.GetValue<string>());
        Assert.Null(copied["sealed"]);

        // acme's own token moved to another field does not open there; a token under a key acme does not hold stays too.
        var moved = await ItemAsync(acmeReader, $"/v1/tenants/acme/events/{movedId}");
        Assert.Equal(ipToken, moved["event"]!["actor"]!["name"]!.GetValue<string>());
        Assert.Equal(missingKey, moved["event"]!["context"]!["userAgent"]!.GetValue<string>());
        Assert.Null(moved["sealed"]);

        // After the restart the key is read from the store and unwrapped again; reading does not depend on sealing being on.
        var source = await ItemAsync(acmeReader, $"/v1/tenants/acme/events/{sourceId}");
        Assert.Equal($"Zoë Quartermaine {_marker}-0", source["event"]!["actor"]!["name"]!.GetValue<string>());
        Assert.Equal(nameToken, source["sealed"]!["/actor/name"]!.GetValue<string>());

        await ServerFixture.WaitForProjectionAsync(globexReader, "globex");
        var page = await globexReader.GetStringAsync("/v1/tenants/globex/events?limit=10");
        Assert.DoesNotContain(_marker, page, StringComparison.Ordinal);
        Assert.Contains(nameToken, page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_data_key_that_no_longer_unwraps_leaves_its_fields_sealed_and_the_read_succeeds()
    {
        using var acme = _server.ClientWithKey(_admin);
        var id = await IngestAsync(acme, "acme", PersonalEvent(0));
        using var globex = _server.ClientWithKey(await _server.CreateKeyAsync("globex", Scopes.EventsWrite));
        await IngestAsync(globex, "globex", PersonalEvent(1));

        // A fault on purpose: acme's key file now holds globex's KEK, so acme's stored data key does not unwrap.
        await _server.StopAsync();
        var keys = Path.Combine(_server.DataDirectory, "keys", "tenants");
        File.Copy(Path.Combine(keys, "globex.key"), Path.Combine(keys, "acme.key"), overwrite: true);
        await _server.RestartAsync();

        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        var item = await ItemAsync(piiReader, $"/v1/tenants/acme/events/{id}");
        Assert.StartsWith(FieldToken.Prefix, item["event"]!["actor"]!["name"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(item["sealed"]);
        Assert.DoesNotContain(_marker, item.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tenant_key_can_be_given_pii_read_and_the_scope_is_listed()
    {
        using var admin = _server.ClientWithKey(_admin);
        var created = await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "privacy officer", scopes = new[] { "events:read", "pii:read" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Contains("\"pii:read\"", await admin.GetStringAsync("/v1/tenants/acme/api-keys"), StringComparison.Ordinal);

        var refused = await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "typo", scopes = new[] { "pii:write" } });
        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.BadRequest, "validation");
        Assert.Contains("pii:read", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private string PersonalEvent(int i) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"user-{i % 2}\",\"name\":\"Zoë Quartermaine {_marker}-{i}\"}},"
        + "\"action\":\"document.update\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-1\"}],\"outcome\":\"success\","
        + $"\"context\":{{\"ip\":\"198.51.100.{i}\",\"userAgent\":\"Mozilla/5.0 ({_marker}-{i})\",\"requestId\":\"req-1\"}},\"data\":{{\"n\":{i}}}}}";

    private static string TokenEvent(string name, string userAgent) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"user-0\",\"name\":\"{name}\"}},"
        + $"\"action\":\"document.update\",\"context\":{{\"userAgent\":\"{userAgent}\"}}}}";

    private static async Task<string> IngestAsync(HttpClient client, string tenant, string json)
    {
        var response = await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(json));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts")[0].GetProperty("id").GetString()!;
    }

    private static async Task<JsonNode> ItemAsync(HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["event"]!;
    }

    // The items of a search page, or the one item of a get-event response.
    private static IEnumerable<JsonNode> Items(JsonNode response) =>
        response["items"] is JsonArray items ? items.Select(i => i!) : [response["event"]!];

    private static byte[] PutBack(JsonNode shown, JsonObject sealedFields)
    {
        using var document = JsonDocument.Parse(shown.ToJsonString());
        var output = new ArrayBufferWriter<byte>();
        Assert.Null(SealedFields.TryPutBack(document.RootElement, sealedFields.Select(f => KeyValuePair.Create(f.Key, f.Value!.GetValue<string>())), output));
        return JsonCanonicalizer.Canonicalize(output.WrittenMemory);
    }
}
