using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// The per-tenant schema registry over real Kestrel, on the engine the run selects (SQLite, or PostgreSQL with
/// ATP_TEST_STORAGE=postgres): registration with compatibility checks, ingest validation, requireRegisteredTypes, auth.
/// </summary>
public sealed class SchemaRegistryTests : IAsyncLifetime
{
    private const string Type = "payment.captured";

    // Closed content model: adding an optional property is then backward compatible (docs/schemas.md).
    private const string V1 = """
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
         "required":["amount","currency"],
         "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD"]}}}
        """;

    private const string V2 = """
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
         "required":["amount","currency"],
         "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD","GBP"]},"orderId":{"type":"string","maxLength":64}}}
        """;

    // Breaks BACKWARD: a new required property (old events lack it) and a narrowed enum.
    private const string Breaking = """
        {"type":"object","additionalProperties":false,"required":["amount","currency","orderId"],
         "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR"]},"orderId":{"type":"string"}}}
        """;

    private ServerFixture _server = null!;
    private string _key = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
        _key = await _server.CreateTenantWithKeyAsync("acme");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static StringContent Register(string schema, string? compatibility = null) =>
        ServerFixture.Json("{\"schema\":" + schema + (compatibility is null ? "" : ",\"compatibility\":\"" + compatibility + "\"") + "}");

    private static string Payment(string data, int? schemaVersion = null, string type = Type) =>
        "{\"type\":\"" + type + "\",\"occurredAt\":\"2026-11-26T10:15:30Z\",\"actor\":{\"type\":\"user\",\"id\":\"u-17\"},"
        + "\"action\":\"payment.capture\"" + (schemaVersion is null ? "" : ",\"schemaVersion\":" + schemaVersion) + ",\"data\":" + data + "}";

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task Register_validate_refuse_a_breaking_version_evolve_and_ingest_against_both_versions()
    {
        using var client = _server.ClientWithKey(_key);

        // v1, then the same schema again (other member order and whitespace): the same version, 200.
        var v1 = await BodyAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V1)), HttpStatusCode.Created);
        Assert.Equal(1, v1.GetProperty("version").GetInt32());
        Assert.Equal("BACKWARD", v1.GetProperty("compatibility").GetString());
        var again = await BodyAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V1.Replace("\n", " ", StringComparison.Ordinal))), HttpStatusCode.OK);
        Assert.Equal(1, again.GetProperty("version").GetInt32());

        // A valid event is stored; an invalid one is 400 naming index, pointer and keyword, and nothing of its batch is stored.
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("""{"amount":12.5,"currency":"EUR"}""")))).StatusCode);
        var before = await _server.TreeSizeAsync("acme");
        var batch = "{\"events\":[" + Payment("""{"amount":1,"currency":"USD"}""") + "," + Payment("""{"amount":-5,"currency":"EUR"}""") + "]}";
        var refused = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(batch)), HttpStatusCode.BadRequest, "schema-violation");
        var error = Assert.Single(refused.GetProperty("errors").EnumerateArray());
        Assert.Equal(1, error.GetProperty("index").GetInt32());
        Assert.Equal("/data/amount", error.GetProperty("pointer").GetString());
        Assert.Equal("minimum", error.GetProperty("keyword").GetString());
        Assert.Equal(1, error.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(before, await _server.TreeSizeAsync("acme"));

        var missing = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("""{"amount":1}"""))), HttpStatusCode.BadRequest, "schema-violation");
        Assert.Equal("required", missing.GetProperty("errors")[0].GetProperty("keyword").GetString());
        Assert.Equal("/data", missing.GetProperty("errors")[0].GetProperty("pointer").GetString());

        // A breaking v2 under BACKWARD: 409 with the breaking changes, and no version 2.
        var breaking = await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(Breaking)), HttpStatusCode.Conflict, "schema-incompatible");
        var changes = breaking.GetProperty("errors").EnumerateArray().ToList();
        Assert.Contains(changes, c => c.GetProperty("pointer").GetString() == "/required" && c.GetProperty("reason").GetString()!.Contains("'orderId' became required", StringComparison.Ordinal));
        Assert.Contains(changes, c => c.GetProperty("pointer").GetString() == "/properties/currency/enum" && c.GetProperty("reason").GetString()!.Contains("\"USD\"", StringComparison.Ordinal));
        Assert.All(changes, c => Assert.Equal(1, c.GetProperty("version").GetInt32()));
        Assert.All(changes, c => Assert.Equal("backward", c.GetProperty("direction").GetString()));
        Assert.Equal([1], (await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/schemas/{Type}")).GetProperty("versions").EnumerateArray().Select(v => v.GetInt32()));

        // A compatible v2: a new optional property in the closed model and a wider enum.
        var created = await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V2));
        Assert.Equal($"/v1/tenants/acme/schemas/{Type}/versions/2", created.Headers.Location?.OriginalString);
        Assert.Equal(2, (await BodyAsync(created, HttpStatusCode.Created)).GetProperty("version").GetInt32());
        Assert.Equal(1, (await BodyAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V1)), HttpStatusCode.OK)).GetProperty("version").GetInt32());

        // Ingest against both versions: v1 still refuses orderId, v2 (named or latest) takes it.
        var withOrder = """{"amount":3,"currency":"GBP","orderId":"o-1"}""";
        var v1Refusal = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment(withOrder, schemaVersion: 1))), HttpStatusCode.BadRequest, "schema-violation");
        Assert.All(v1Refusal.GetProperty("errors").EnumerateArray(), e => Assert.Equal(1, e.GetProperty("schemaVersion").GetInt32()));
        Assert.Contains(v1Refusal.GetProperty("errors").EnumerateArray(), e => e.GetProperty("keyword").GetString() == "additionalProperties" && e.GetProperty("pointer").GetString() == "/data/orderId");
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment(withOrder, schemaVersion: 2)))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment(withOrder)))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("""{"amount":1,"currency":"EUR"}""", schemaVersion: 1)))).StatusCode);
        var unknown = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment(withOrder, schemaVersion: 3))), HttpStatusCode.BadRequest, "schema-violation");
        Assert.Equal("/schemaVersion", unknown.GetProperty("errors")[0].GetProperty("pointer").GetString());
        var malformed = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment(withOrder).Replace("\"data\"", "\"schemaVersion\":\"2\",\"data\"", StringComparison.Ordinal))), HttpStatusCode.BadRequest, "validation");
        Assert.Equal("/schemaVersion", malformed.GetProperty("errors")[0].GetProperty("pointer").GetString());

        // Reads: the list, the type (latest, mode, versions) and one version.
        var list = await client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/schemas");
        var item = Assert.Single(list.GetProperty("items").EnumerateArray());
        Assert.Equal(Type, item.GetProperty("type").GetString());
        Assert.Equal(2, item.GetProperty("latestVersion").GetInt32());
        var type = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/schemas/{Type}");
        Assert.Equal([1, 2], type.GetProperty("versions").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal("BACKWARD", type.GetProperty("compatibility").GetString());
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(V2).RootElement, type.GetProperty("schema")));
        var first = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/schemas/{Type}/versions/1");
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(V1).RootElement, first.GetProperty("schema")));
        await ProblemAssert.IsProblemAsync(await client.GetAsync($"/v1/tenants/acme/schemas/{Type}/versions/3"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await client.GetAsync($"/v1/tenants/acme/schemas/{Type}/versions/x"), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/acme/schemas/other.type"), HttpStatusCode.NotFound, "not-found");

        // Events of unregistered types are not checked while requireRegisteredTypes is off.
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);
    }

    [Fact]
    public async Task Require_registered_types_refuses_events_of_unregistered_types()
    {
        using var client = _server.ClientWithKey(_key);
        using var admin = _server.Admin;
        await PolicySteps.ChangeAsync(_server, "acme", """{"requireRegisteredTypes":true}""");
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("settings").GetProperty("requireRegisteredTypes").GetBoolean());

        var refused = await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.BadRequest, "schema-violation");
        Assert.Equal("/type", refused.GetProperty("errors")[0].GetProperty("pointer").GetString());
        Assert.Contains("requireRegisteredTypes", refused.GetProperty("errors")[0].GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0UL, await _server.TreeSizeAsync("acme"));

        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync("/v1/tenants/acme/schemas/app.audit", Register("""{"type":"object"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);

        await ProblemAssert.IsProblemAsync(
            await admin.PostAsync("/v1/tenants/acme/policy/proposals", ServerFixture.Json("""{"changes":{"requireRegisteredTypes":"yes"},"reason":"r"}""")), HttpStatusCode.BadRequest, "validation");
        await PolicySteps.ChangeAsync(_server, "acme", """{"requireRegisteredTypes":null}""");
        Assert.False((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme")).GetProperty("settings").GetProperty("requireRegisteredTypes").GetBoolean());
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("{}", type: "unregistered.type")))).StatusCode);
    }

    [Fact]
    public async Task A_reader_or_writer_key_reads_schemas_but_cannot_register_or_change_the_mode_and_other_tenants_see_nothing()
    {
        using var admin = _server.ClientWithKey(_key);
        Assert.Equal(HttpStatusCode.Created, (await admin.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V1))).StatusCode);
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite));

        foreach (var client in new[] { reader, writer })
        {
            await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V2)), HttpStatusCode.Forbidden, "forbidden");
            await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}/compatibility", ServerFixture.Json("""{"compatibility":"NONE"}""")), HttpStatusCode.Forbidden, "forbidden");
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/acme/schemas/{Type}")).StatusCode);
        }

        var type = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/schemas/{Type}");
        Assert.Equal([1], type.GetProperty("versions").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal("BACKWARD", type.GetProperty("compatibility").GetString());

        using var other = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("globex"));
        await ProblemAssert.IsProblemAsync(await other.GetAsync($"/v1/tenants/acme/schemas/{Type}"), HttpStatusCode.Forbidden, "forbidden");
        Assert.Empty((await other.GetFromJsonAsync<JsonElement>("/v1/tenants/globex/schemas")).GetProperty("items").EnumerateArray());
        await ProblemAssert.IsProblemAsync(await other.GetAsync($"/v1/tenants/globex/schemas/{Type}"), HttpStatusCode.NotFound, "not-found");

        // The same type name in another tenant is unconstrained by acme's schema.
        Assert.Equal(HttpStatusCode.Created, (await other.PostAsync("/v1/tenants/globex/events", ServerFixture.Json(Payment("""{"amount":-1}""")))).StatusCode);
    }

    [Theory]
    [InlineData("""{"schema":{"type":"objectx"}}""", "objectx")]
    [InlineData("""{"schema":{"type":"object","properties":{"a":{"pattern":"(("}}}}""", "((")]
    [InlineData("""{"schema":{"$ref":"https://example.com/s.json"}}""", "inside this schema")]
    [InlineData("""{"schema":{"format":"credit-card"}}""", "unknown format")]
    [InlineData("""{"schema":{"$schema":"http://json-schema.org/draft-07/schema#"}}""", "2020-12")]
    [InlineData("""{"schema":7}""", "must be a JSON Schema")]
    public async Task An_invalid_schema_is_400_naming_why_and_nothing_is_stored(string body, string reason)
    {
        using var client = _server.ClientWithKey(_key);

        var problem = await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "invalid-schema");

        Assert.Contains(problem.GetProperty("errors").EnumerateArray(), e => e.GetString()!.Contains(reason, StringComparison.Ordinal));
        await ProblemAssert.IsProblemAsync(await client.GetAsync($"/v1/tenants/acme/schemas/{Type}"), HttpStatusCode.NotFound, "not-found");
    }

    [Theory]
    [InlineData("""{"compatibility":"BACKWARD"}""", "schema")]
    [InlineData("""{"schema":{},"compatibility":"SIDEWAYS"}""", "compatibility")]
    public async Task A_request_without_schema_or_with_an_unknown_mode_is_400(string body, string what)
    {
        using var client = _server.ClientWithKey(_key);

        var problem = await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");

        Assert.StartsWith(what, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/schemas")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Mode_changes_and_registrations_are_in_the_platform_audit_log_and_NONE_admits_a_breaking_version()
    {
        using var client = _server.ClientWithKey(_key);
        await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}/compatibility", ServerFixture.Json("""{"compatibility":"NONE"}""")), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V1, "FULL"))).StatusCode);
        await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}/compatibility", ServerFixture.Json("""{"compatibility":"none"}""")), HttpStatusCode.BadRequest, "validation");

        // FULL: V2 is backward compatible but not forward (an event with orderId is refused by v1).
        var full = await ProblemAssert.IsProblemAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(V2)), HttpStatusCode.Conflict, "schema-incompatible");
        Assert.All(full.GetProperty("errors").EnumerateArray(), e => Assert.Equal("forward", e.GetProperty("direction").GetString()));

        var mode = await BodyAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}/compatibility", ServerFixture.Json("""{"compatibility":"NONE"}""")), HttpStatusCode.OK);
        Assert.Equal("NONE", mode.GetProperty("compatibility").GetString());
        Assert.Equal(2, (await BodyAsync(await client.PutAsync($"/v1/tenants/acme/schemas/{Type}", Register(Breaking)), HttpStatusCode.Created)).GetProperty("version").GetInt32());

        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = _server.Admin;
        await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
        var page = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/{PlatformAuditLog.TenantId}/events?order=asc&limit=1000");
        var schemaEvents = page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
            .Where(e => e.GetProperty("action").GetString()!.StartsWith("schema.", StringComparison.Ordinal)).ToList();
        Assert.Equal(["schema.registered", "schema.compatibility-changed", "schema.registered"], schemaEvents.Select(e => e.GetProperty("action").GetString()));
        Assert.Equal(Type, schemaEvents[0].GetProperty("data").GetProperty("type").GetString());
        Assert.Equal("FULL", schemaEvents[0].GetProperty("data").GetProperty("compatibility").GetString());
        Assert.Equal("NONE", schemaEvents[1].GetProperty("data").GetProperty("compatibility").GetString());
        Assert.Equal("FULL", schemaEvents[1].GetProperty("data").GetProperty("previous").GetString());
        Assert.Equal("2", schemaEvents[2].GetProperty("data").GetProperty("version").GetString());
        Assert.All(schemaEvents, e => Assert.Equal("acme", e.GetProperty("targets")[0].GetProperty("id").GetString()));
    }

    [Fact]
    public async Task A_type_with_a_slash_is_addressed_with_percent_2F()
    {
        using var client = _server.ClientWithKey(_key);

        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync("/v1/tenants/acme/schemas/billing%2Finvoice", Register("""{"type":"object","required":["n"]}"""))).StatusCode);

        Assert.Equal("billing/invoice", (await client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/schemas/billing%2Finvoice")).GetProperty("type").GetString());
        await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("{}", type: "billing/invoice"))), HttpStatusCode.BadRequest, "schema-violation");
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Payment("""{"n":1}""", type: "billing/invoice")))).StatusCode);
        await ProblemAssert.IsProblemAsync(await client.PutAsync("/v1/tenants/acme/schemas/bad%20type", Register("{}")), HttpStatusCode.BadRequest, "validation");
    }
}

/// <summary>The registry's limits, on a server configured with small ones.</summary>
public sealed class SchemaLimitTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Atp:Schemas:MaxVersionsPerType"] = "2",
        ["Atp:Schemas:MaxTypesPerTenant"] = "2",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Versions_per_type_and_types_per_tenant_are_capped_with_409_and_nothing_stored()
    {
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json("""{"schema":{"type":"integer"}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json("""{"schema":{"type":"number"}}"""))).StatusCode);

        await ProblemAssert.IsProblemAsync(await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json("""{"schema":{"type":["number","null"]}}""")), HttpStatusCode.Conflict, "schema-limit");
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json("""{"schema":{"type":"number"}}"""))).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync("/v1/tenants/acme/schemas/b", ServerFixture.Json("""{"schema":true}"""))).StatusCode);
        await ProblemAssert.IsProblemAsync(await client.PutAsync("/v1/tenants/acme/schemas/c", ServerFixture.Json("""{"schema":true}""")), HttpStatusCode.Conflict, "schema-limit");

        var list = await client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/schemas");
        Assert.Equal(["a", "b"], list.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("type").GetString()));
        Assert.Equal(2, list.GetProperty("items")[0].GetProperty("latestVersion").GetInt32());
    }

    [Fact]
    public async Task A_schema_over_64_KiB_is_refused()
    {
        using var client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        var big = "{\"schema\":{\"description\":\"" + new string('x', 70 * 1024) + "\"}}";

        await ProblemAssert.IsProblemAsync(await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json(big)), HttpStatusCode.BadRequest, "invalid-schema");
        await ProblemAssert.IsProblemAsync(await client.PutAsync("/v1/tenants/acme/schemas/a", ServerFixture.Json("{\"schema\":{\"description\":\"" + new string('x', 200 * 1024) + "\"}}")), HttpStatusCode.RequestEntityTooLarge, "too-large");
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/schemas")).GetProperty("items").EnumerateArray());
    }
}
