using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>RFC 9421 signed requests (hmac-sha256, label atp) over real HTTP, and the requireSignedRequests setting.</summary>
public sealed class SignedRequestTests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private SigningKey _key = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
        using var admin = _server.Admin;
        _key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bank", Scopes.EventsWrite, Scopes.EventsRead);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private HttpClient Signed(SigningHandler handler) => new(handler) { BaseAddress = _server.BaseAddress };

    [Fact]
    public async Task An_enterprise_tenant_requires_signatures_and_a_signed_batch_is_stored()
    {
        using var admin = _server.Admin;
        var tenant = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/bank");
        Assert.True(tenant.GetProperty("settings").GetProperty("requireSignedRequests").GetBoolean());

        using var client = Signed(new SigningHandler(_key));
        var response = await client.PostAsync("/v1/tenants/bank/events?source=test", ServerFixture.Json(ServerFixture.Batch(3)));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(3UL, await _server.TreeSizeAsync("bank"));

        // A signed read without a body (no content-digest) works too.
        var list = await client.GetAsync("/v1/tenants/bank/events?limit=10");
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task Many_concurrent_signed_requests_all_verify()
    {
        using var client = Signed(new SigningHandler(_key));

        var responses = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        Assert.Equal(64UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_bare_bearer_key_of_a_tenant_that_requires_signatures_is_refused_and_nothing_is_stored()
    {
        using var bearer = _server.ClientWithKey(_key.Key);

        var response = await bearer.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "signature-required");
        Assert.Equal(0UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_signed_request_may_also_carry_its_own_bearer_key_but_not_another()
    {
        using var same = Signed(new SigningHandler(_key) { SendBearer = true });
        Assert.Equal(HttpStatusCode.Created, (await same.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);

        using var admin = _server.Admin;
        var other = await SigningKeys.CreateAsync(admin, "bank", Scopes.EventsWrite);
        using var mixed = Signed(new SigningHandler(_key with { Key = other.Key }) { SendBearer = true });
        var response = await mixed.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(1UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_body_changed_after_signing_is_refused_and_nothing_is_stored()
    {
        var original = ServerFixture.Batch(1);
        using var client = Signed(new SigningHandler(_key) { TamperBody = Encoding.UTF8.GetBytes(original.Replace("user-0", "user-9", StringComparison.Ordinal)) });

        var response = await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(original));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("Content-Digest", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_signature_under_another_secret_is_refused()
    {
        using var client = Signed(new SigningHandler(_key) { WrongSecret = new byte[32] });

        var response = await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("does not verify", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_replayed_request_is_refused_and_stored_only_once()
    {
        var handler = new SigningHandler(_key);
        using var client = Signed(handler);
        var body = ServerFixture.Batch(2);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(body))).StatusCode);

        handler.Replay = handler.Last;
        var replay = await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(body));

        var problem = await ProblemAssert.IsProblemAsync(replay, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("replay", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(2UL, await _server.TreeSizeAsync("bank"));
    }

    // 302, not 301: `created` is whole seconds, so a signature made 301 s ahead at x.9 s reaches a server that is
    // already past the next second as 300.x s ahead, inside the window.
    [Theory]
    [InlineData(-302)]
    [InlineData(302)]
    public async Task A_signature_created_outside_the_window_is_refused(int offsetSeconds)
    {
        using var client = Signed(new SigningHandler(_key) { ClockOffset = TimeSpan.FromSeconds(offsetSeconds) });

        var response = await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(0UL, await _server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task A_signature_naming_an_unknown_key_or_a_key_without_signing_is_refused()
    {
        using var unknown = Signed(new SigningHandler(_key with { Id = "key_00000000000000ff" }));
        await ProblemAssert.IsProblemAsync(await unknown.GetAsync("/v1/tenants/bank/events"), HttpStatusCode.Unauthorized, "unauthenticated");

        var plainKey = await _server.CreateKeyAsync("bank", Scopes.EventsRead);
        using var admin = _server.Admin;
        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/bank/api-keys");
        var plain = keys.GetProperty("items").EnumerateArray().Single(k => !k.GetProperty("signing").GetBoolean());
        using var noSecret = Signed(new SigningHandler(new SigningKey(plain.GetProperty("id").GetString()!, plainKey, _key.Secret)));
        await ProblemAssert.IsProblemAsync(await noSecret.GetAsync("/v1/tenants/bank/events"), HttpStatusCode.Unauthorized, "unauthenticated");
    }

    [Fact]
    public async Task A_malformed_signature_header_is_refused_with_a_reason()
    {
        using var client = _server.ClientWithKey(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tenants/bank/events");
        request.Headers.TryAddWithoutValidation("Signature-Input", "atp=(\"@method\";created=oops");
        request.Headers.TryAddWithoutValidation("Signature", "atp=:AAAA:");

        var problem = await ProblemAssert.IsProblemAsync(await client.SendAsync(request), HttpStatusCode.Unauthorized, "unauthenticated");

        Assert.Contains("signature", problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_signing_secret_is_shown_once_listed_as_signing_and_stored_only_sealed()
    {
        using var admin = _server.Admin;
        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/bank/api-keys");
        var listed = keys.GetProperty("items").EnumerateArray().Single(k => k.GetProperty("id").GetString() == _key.Id);
        Assert.True(listed.GetProperty("signing").GetBoolean());
        Assert.False(listed.TryGetProperty("signingSecret", out _));

        // Neither the raw secret nor its base64 appears anywhere in the database files.
        var secretBase64 = Encoding.ASCII.GetBytes(Convert.ToBase64String(_key.Secret));
        foreach (var file in Directory.GetFiles(_server.DataDirectory, "atp.db*"))
        {
            var bytes = await ReadSharedAsync(file);
            Assert.Equal(-1, bytes.AsSpan().IndexOf(_key.Secret));
            Assert.Equal(-1, bytes.AsSpan().IndexOf(secretBase64));
        }
    }

    [Fact]
    public async Task A_platform_admin_can_require_signatures_of_a_default_tenant_and_lift_it_again()
    {
        var bearerKey = await _server.CreateTenantWithKeyAsync("shop");
        using var bearer = _server.ClientWithKey(bearerKey);
        Assert.Equal(HttpStatusCode.Created, (await bearer.PostAsync("/v1/tenants/shop/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);

        using var admin = _server.Admin;
        await PolicySteps.ChangeAsync(_server, "shop", """{"requireSignedRequests":true}""");
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/shop")).GetProperty("settings").GetProperty("requireSignedRequests").GetBoolean());
        await ProblemAssert.IsProblemAsync(await bearer.PostAsync("/v1/tenants/shop/events", ServerFixture.Json(ServerFixture.Batch(1))), HttpStatusCode.Unauthorized, "signature-required");

        await PolicySteps.ChangeAsync(_server, "shop", """{"requireSignedRequests":null}""");
        Assert.False((await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/shop")).GetProperty("settings").GetProperty("requireSignedRequests").GetBoolean());
        Assert.Equal(HttpStatusCode.Created, (await bearer.PostAsync("/v1/tenants/shop/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        Assert.Equal(2UL, await _server.TreeSizeAsync("shop"));
    }

    [Fact]
    public async Task A_tenant_admin_cannot_lift_the_signature_requirement()
    {
        using var admin = _server.Admin;
        var tenantAdmin = await _server.CreateKeyAsync("bank", Scopes.TenantAdmin);
        using var client = _server.ClientWithKey(tenantAdmin);

        var response = await client.PatchAsJsonAsync("/v1/tenants/bank", new { requireSignedRequests = false });

        Assert.True(response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"got {(int)response.StatusCode}");
        var tenant = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/bank");
        Assert.True(tenant.GetProperty("settings").GetProperty("requireSignedRequests").GetBoolean());
    }

    [Fact]
    public async Task The_atp_request_command_signs_requests_the_server_accepts()
    {
        var work = Directory.CreateTempSubdirectory("atp-request-").FullName;
        try
        {
            var batch = Path.Combine(work, "batch.json");
            await File.WriteAllTextAsync(batch, ServerFixture.Batch(2));
            var environment = new Dictionary<string, string> { ["ATP_KEY_ID"] = _key.Id, ["ATP_SIGNING_SECRET"] = Convert.ToBase64String(_key.Secret) };
            var url = new Uri(_server.BaseAddress, "/v1/tenants/bank/events").AbsoluteUri;

            var posted = await AuditorTests.AtpAsync(environment, "request", "POST", url, "--data", batch);
            var listed = await AuditorTests.AtpAsync(environment, "request", "GET", url + "?limit=5");
            var unsigned = await AuditorTests.AtpAsync(new Dictionary<string, string> { ["ATP_API_KEY"] = _key.Key }, "request", "GET", url);

            Assert.True(posted.ExitCode == 0, posted.Error);
            Assert.Contains("receipts", posted.Output, StringComparison.Ordinal);
            Assert.True(listed.ExitCode == 0, listed.Error);
            Assert.Equal(2, JsonDocument.Parse(listed.Output).RootElement.GetProperty("items").GetArrayLength());
            Assert.Equal(1, unsigned.ExitCode);
            Assert.Contains("signature-required", unsigned.Output, StringComparison.Ordinal);
            Assert.Equal(2UL, await _server.TreeSizeAsync("bank"));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }
}
