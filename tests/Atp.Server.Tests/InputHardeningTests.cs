using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Events;

namespace Atp.Server.Tests;

/// <summary>
/// Inputs an outside security test found accepted: data nested so deep that reads break, media types matched by prefix,
/// duplicate members, names with control or bidi characters. Each is refused with a problem and nothing stored.
/// </summary>
public sealed class InputHardeningTests : AcmeServerTests
{
    private static string EventWithDataDepth(int depth) =>
        "{\"type\":\"acme.doc.v1\",\"occurredAt\":\"2026-11-26T10:00:00Z\",\"actor\":{\"type\":\"user\",\"id\":\"u\"},\"action\":\"doc.read\",\"outcome\":\"success\",\"data\":"
        + string.Concat(Enumerable.Repeat("{\"a\":", depth - 1)) + "{\"leaf\":1}" + new string('}', depth - 1) + "}";

    [Theory]
    [InlineData(EventReader.MaxDataDepth + 1)]
    [InlineData(61)]
    public async Task Data_deeper_than_the_limit_is_refused_and_nothing_is_stored(int depth)
    {
        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + EventWithDataDepth(depth) + "]}"));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "malformed-json");
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task Data_at_the_depth_limit_is_readable_by_get_by_id_search_and_verify_on_read()
    {
        foreach (var body in new[] { "{\"events\":[" + EventWithDataDepth(EventReader.MaxDataDepth) + "]}", EventWithDataDepth(EventReader.MaxDataDepth) })
        {
            var created = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 2);
        await ServerFixture.WaitForProjectionAsync(Acme, "acme");
        foreach (var path in new[] { "/v1/tenants/acme/events?limit=10", "/v1/tenants/acme/events?limit=10&verify=true" })
        {
            var page = await Acme.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            using var document = JsonDocument.Parse(await page.Content.ReadAsStringAsync(), new JsonDocumentOptions { MaxDepth = 256 });
            var items = document.RootElement.GetProperty("items");
            Assert.Equal(2, items.GetArrayLength());
            foreach (var item in items.EnumerateArray())
            {
                var one = await Acme.GetAsync($"/v1/tenants/acme/events/{item.GetProperty("event").GetProperty("id").GetString()}?proof=true");
                Assert.Equal(HttpStatusCode.OK, one.StatusCode);
                using var single = JsonDocument.Parse(await one.Content.ReadAsStringAsync(), new JsonDocumentOptions { MaxDepth = 256 });
                var data = single.RootElement.GetProperty("event").GetProperty("event").GetProperty("data");
                for (var level = 1; level < EventReader.MaxDataDepth; level++)
                {
                    data = data.GetProperty("a");
                }

                Assert.Equal(1, data.GetProperty("leaf").GetInt32());
            }
        }
    }

    [Theory]
    [InlineData("application/jsonxyz")]
    [InlineData("application/json-patch")]
    [InlineData("text/json")]
    [InlineData("application/x+jsonx")]
    public async Task Media_types_that_only_start_like_json_are_415(string mediaType)
    {
        var content = new StringContent(ServerFixture.Batch(1), Encoding.UTF8);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(mediaType);

        var response = await Acme.PostAsync("/v1/tenants/acme/events", content);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));
    }

    [Theory]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/vnd.acme.audit+json")]
    public async Task Json_media_types_with_parameters_or_a_json_suffix_are_accepted(string mediaType)
    {
        var content = new StringContent(ServerFixture.Batch(1), Encoding.UTF8);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(mediaType);

        Assert.Equal(HttpStatusCode.Created, (await Acme.PostAsync("/v1/tenants/acme/events", content)).StatusCode);
    }

    [Fact]
    public async Task A_batch_with_two_events_members_is_refused_not_last_wins()
    {
        var body = "{\"events\":[" + ServerFixture.Event(actor: "first") + "],\"events\":[" + ServerFixture.Event(actor: "second") + "," + ServerFixture.Event(actor: "third") + "]}";

        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task A_tenant_request_with_a_duplicate_member_is_refused()
    {
        using var admin = Server.Admin;
        var response = await admin.PostAsync("/v1/tenants", ServerFixture.Json("{\"id\":\"dupco\",\"name\":\"Dup\",\"id\":\"other\"}"));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "malformed-json");
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/other"), HttpStatusCode.NotFound, "not-found");
    }

    [Theory]
    [InlineData("Acme\u0000Corp")]
    [InlineData("Acme\nCorp")]
    [InlineData("Acme\u202ECorp")]
    [InlineData("Acme\u2066Corp")]
    [InlineData("Acme\u200BCorp")]
    public async Task Names_with_control_format_or_bidi_characters_are_refused(string name)
    {
        using var admin = Server.Admin;

        var tenant = await admin.PostAsJsonAsync("/v1/tenants", new { id = "badname", name });
        var key = await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name, scopes = new[] { "events:read" } });

        await ProblemAssert.IsProblemAsync(tenant, HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(key, HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/badname"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Names_in_any_script_with_emoji_are_accepted()
    {
        using var admin = Server.Admin;

        var tenant = await admin.PostAsJsonAsync("/v1/tenants", new { id = "unicode", name = "Société Générale 東京 🚀" });

        Assert.Equal(HttpStatusCode.Created, tenant.StatusCode);
    }
}

/// <summary>Search answers that must never be silently wrong: bad cursors are 400, and verify=true never returns an item without its proof.</summary>
public sealed class SearchAnswerTests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private HttpClient _client = null!;

    // The sealer signs at start and then once an hour: entries appended after start have no checkpoint.
    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(checkpointInterval: "01:00:00");
        _client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData(201)]
    [InlineData(500)]
    public async Task A_cursor_longer_than_200_characters_is_400_not_page_one(int length)
    {
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);

        var response = await _client.GetAsync("/v1/tenants/acme/events?limit=1&cursor=" + new string('A', length));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        Assert.Contains("cursor", problem.GetRawText(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("%01")]
    [InlineData("abc%0Adef")]
    [InlineData("%7F")]
    public async Task A_cursor_with_a_control_character_is_400(string cursor)
    {
        var response = await _client.GetAsync("/v1/tenants/acme/events?cursor=" + cursor);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Verify_on_read_before_the_first_checkpoint_says_proof_pending_with_retry_after_and_returns_no_unproven_item()
    {
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        await ServerFixture.WaitForProjectionAsync(_client, "acme");
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/v1/tenants/acme/log/checkpoint")).StatusCode);

        var verified = await _client.GetAsync("/v1/tenants/acme/events?verify=true");

        Assert.Equal(HttpStatusCode.OK, verified.StatusCode);
        Assert.NotNull(verified.Headers.RetryAfter);
        var body = await verified.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.GetProperty("proofPending").GetBoolean());
        Assert.Equal(0, body.GetProperty("items").GetArrayLength());

        var plain = await _client.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events");
        Assert.Equal(3, plain.GetProperty("items").GetArrayLength());
        Assert.False(plain.TryGetProperty("proofPending", out _));
    }
}
