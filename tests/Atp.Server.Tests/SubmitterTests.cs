using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Every stored event records which credential submitted it, inside the leaf (so proofs cover it) and in a member
/// clients cannot set: an API key by its id, a person by OIDC issuer and subject.
/// </summary>
public sealed class SubmitterTests : IAsyncLifetime
{
    private OidcProvider _oidc = null!;
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        _oidc = await OidcProvider.StartAsync();
        _server = await ServerFixture.StartAsync(settings: _oidc.ServerSettings());
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _oidc.DisposeAsync();
    }

    private static async Task<JsonElement> LeafAsync(HttpClient client, ulong index)
    {
        var response = await client.GetAsync($"/v1/tenants/acme/log/entries/{index}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(Convert.ToBase64String(MerkleHasher.HashLeaf(bytes).ToArray()), response.Headers.GetValues("Leaf-Hash").Single());
        return JsonDocument.Parse(bytes).RootElement.Clone();
    }

    [Fact]
    public async Task An_api_key_and_an_oidc_subject_are_recorded_in_the_leaves_they_submit()
    {
        var key = await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.Admin;
        var keyId = (await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys")).GetProperty("items")[0].GetProperty("id").GetString();
        using var byKey = _server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.Created, (await byKey.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);

        using var byPerson = new HttpClient { BaseAddress = _server.BaseAddress };
        byPerson.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _oidc.Token("svc-17", "acme", ["atp.writer"]));
        Assert.Equal(HttpStatusCode.Created, (await byPerson.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()))).StatusCode);

        var first = (await LeafAsync(byKey, 0)).GetProperty("submittedBy");
        Assert.Equal("api-key", first.GetProperty("type").GetString());
        Assert.Equal(keyId, first.GetProperty("id").GetString());
        Assert.False(first.TryGetProperty("issuer", out _));

        var second = (await LeafAsync(byKey, 1)).GetProperty("submittedBy");
        Assert.Equal("oidc", second.GetProperty("type").GetString());
        Assert.Equal("svc-17", second.GetProperty("id").GetString());
        Assert.False(string.IsNullOrEmpty(second.GetProperty("issuer").GetString()));

        // Search returns it as part of the event, so `atp verify events` recomputes the same leaf.
        await ServerFixture.WaitForProjectionAsync(byKey, "acme");
        var page = await byKey.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?order=asc");
        Assert.Equal(keyId, page.GetProperty("items")[0].GetProperty("event").GetProperty("submittedBy").GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_client_cannot_set_submittedBy()
    {
        var key = await _server.CreateTenantWithKeyAsync("acme");
        using var client = _server.ClientWithKey(key);
        var genuine = ServerFixture.Event();
        var forged = genuine[..^1] + ",\"submittedBy\":{\"type\":\"api-key\",\"id\":\"key_0000000000000000\"}}";

        var response = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(forged));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        Assert.Equal(0UL, await _server.TreeSizeAsync("acme"));
    }
}
