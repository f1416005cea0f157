using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary>Residency guard: a cell serves only tenants whose policy allows its region (421 elsewhere, nothing stored).</summary>
public sealed class ResidencyTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_tenant_whose_policy_excludes_this_cell_cannot_be_created_here()
    {
        using var admin = _server.Admin;

        var strictElsewhere = await admin.PostAsJsonAsync("/v1/tenants", new { id = "eu-only", name = "EU only", homeRegion = "westeu", residency = new { mode = "strict", allowedRegions = new[] { "local" } } });
        var permittedHere = await admin.PostAsJsonAsync("/v1/tenants", new { id = "eu-plus", name = "EU plus", homeRegion = "westeu", residency = new { mode = "permitted", allowedRegions = new[] { "local" } } });
        var permittedElsewhere = await admin.PostAsJsonAsync("/v1/tenants", new { id = "eu-us", name = "EU and US", homeRegion = "westeu", residency = new { mode = "permitted", allowedRegions = new[] { "useast" } } });

        // A strict policy ignores allowedRegions: only the home region counts.
        await ProblemAssert.IsProblemAsync(strictElsewhere, HttpStatusCode.MisdirectedRequest, "residency");
        Assert.Equal(HttpStatusCode.Created, permittedHere.StatusCode);
        await ProblemAssert.IsProblemAsync(permittedElsewhere, HttpStatusCode.MisdirectedRequest, "residency");
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/eu-only"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/eu-us"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task A_cell_of_another_region_refuses_every_call_for_the_tenant_and_stores_nothing()
    {
        var key = await _server.CreateTenantWithKeyAsync("homebound");
        using (var client = _server.ClientWithKey(key))
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/homebound/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        }

        // The same data served by a cell that claims another region.
        _server.Region = "westeu";
        await _server.RestartAsync();
        using (var client = _server.ClientWithKey(key))
        using (var admin = _server.Admin)
        {
            await ProblemAssert.IsProblemAsync(await client.PostAsync("/v1/tenants/homebound/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.MisdirectedRequest, "residency");
            await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/homebound/events"), HttpStatusCode.MisdirectedRequest, "residency");
            await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/homebound/log/checkpoint"), HttpStatusCode.MisdirectedRequest, "residency");
            await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/homebound/log/entries/0"), HttpStatusCode.MisdirectedRequest, "residency");
            await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/homebound"), HttpStatusCode.MisdirectedRequest, "residency");
        }

        _server.Region = "local";
        await _server.RestartAsync();
        using var home = _server.ClientWithKey(key);
        await ServerFixture.WaitForProjectionAsync(home, "homebound");
        var page = await home.GetFromJsonAsync<JsonElement>("/v1/tenants/homebound/events?order=asc&limit=1000");
        Assert.Equal(3, page.GetProperty("items").GetArrayLength());
    }
}
