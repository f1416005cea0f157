using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>Policy changes the way an operator makes them: proposed by one admin, approved by a second person.</summary>
internal static class PolicySteps
{
    /// <summary>A new platform-admin key belonging to <paramref name="owner"/>.</summary>
    public static async Task<string> PlatformKeyAsync(ServerFixture server, string owner)
    {
        using var admin = server.Admin;
        var created = await admin.PostAsJsonAsync("/v1/admin/keys", new { name = $"admin of {owner}", owner });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    /// <summary>A new tenant-admin key of <paramref name="tenant"/> belonging to <paramref name="owner"/>.</summary>
    public static async Task<string> TenantAdminKeyAsync(ServerFixture server, string tenant, string owner)
    {
        using var platform = server.Admin;
        var response = await platform.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "admin", scopes = new[] { Scopes.TenantAdmin }, owner });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    /// <summary>Proposes <paramref name="changesJson"/> with <paramref name="proposer"/>; the proposal's id.</summary>
    public static async Task<string> ProposeAsync(HttpClient proposer, string tenant, string changesJson)
    {
        var proposed = await proposer.PostAsync($"/v1/tenants/{tenant}/policy/proposals", ServerFixture.Json($$"""{"changes":{{changesJson}},"reason":"test change"}"""));
        var body = await proposed.Content.ReadAsStringAsync();
        Assert.True(proposed.StatusCode == HttpStatusCode.Created, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>The fixture's admin proposes, a second platform admin (another owner) approves; the new active version.</summary>
    public static async Task<JsonElement> ChangeAsync(ServerFixture server, string tenant, string changesJson)
    {
        using var admin = server.Admin;
        var id = await ProposeAsync(admin, tenant, changesJson);
        using var second = server.ClientWithKey(await PlatformKeyAsync(server, "second-approver"));
        var approved = await second.PostAsync($"/v1/tenants/{tenant}/policy/proposals/{id}/approve", null);
        var body = await approved.Content.ReadAsStringAsync();
        Assert.True(approved.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
