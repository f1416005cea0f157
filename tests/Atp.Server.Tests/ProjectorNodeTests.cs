using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary><c>Atp:Query:Projector=false</c>: an ingest node leaves the outbox to other nodes and still reports the lag.</summary>
public sealed class ProjectorNodeTests
{
    [Fact]
    public async Task A_node_that_does_not_project_keeps_the_outbox_for_one_that_does()
    {
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Query:Projector"] = "false" });
        var key = await server.CreateTenantWithKeyAsync("acme");
        using var acme = server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(5)))).StatusCode);

        // Well past the projector's linger (200 ms): a projecting node would have caught up by now.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var status = await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/projection");
        Assert.Equal(0UL, status.GetProperty("projectedSize").GetUInt64());
        Assert.Equal(5UL, status.GetProperty("treeSize").GetUInt64());
        using var ready = JsonDocument.Parse(await (await server.ClientWithKey(null).GetAsync("/readyz")).Content.ReadAsStringAsync());
        Assert.Equal("Healthy", ready.RootElement.GetProperty("status").GetString());
        Assert.True(ready.RootElement.GetProperty("ready").GetProperty("data").GetProperty("projectionLagSeconds").GetDouble() >= 1);

        server.Settings.Remove("Atp:Query:Projector");
        await server.RestartAsync();

        using var again = server.ClientWithKey(key);
        await ServerFixture.WaitForProjectionAsync(again, "acme");
        var page = await again.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events");
        Assert.Equal(5, page.GetProperty("items").GetArrayLength());
    }
}
