using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.Server.Tests;

public sealed class HostingTests
{
    [Fact]
    public async Task Liveness_readiness_and_api_documents_are_served()
    {
        await using var server = await ServerFixture.StartAsync();
        using var client = server.ClientWithKey(null);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/livez")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        HttpResponseMessage ready;
        while ((ready = await client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        using var readiness = System.Text.Json.JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
        Assert.Equal("Healthy", readiness.RootElement.GetProperty("status").GetString());
        Assert.True(readiness.RootElement.GetProperty("ready").GetProperty("data").GetProperty("projectionLagSeconds").GetDouble() >= 0);

        var openApi = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        Assert.StartsWith("3.1", openApi.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = openApi.GetProperty("paths");
        foreach (var path in new[] { "/v1/tenants", "/v1/tenants/{tenant}/events", "/v1/tenants/{tenant}/events/{id}", "/v1/tenants/{tenant}/log/checkpoint", "/v1/tenants/{tenant}/log/proof/consistency", "/v1/log/keys" })
        {
            Assert.True(paths.TryGetProperty(path, out _) || paths.TryGetProperty(path + "/", out _), $"{path} missing from the OpenAPI document");
        }

        var scalar = await client.GetAsync("/scalar/");
        Assert.Equal(HttpStatusCode.OK, scalar.StatusCode);
        Assert.Contains("text/html", scalar.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Every_file_and_directory_the_server_creates_is_owner_only()
    {
        await using var server = await ServerFixture.StartAsync(withAdminKey: false);
        using var client = server.ClientWithKey(await server.CreateTenantWithKeyAsync("acme"));
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(5)))).StatusCode);
        await ServerFixture.WaitForProjectionAsync(client, "acme");
        await ServerFixture.WaitForCheckpointAsync(client, "acme", 5);

        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(server.DataDirectory));
        var entries = Directory.GetFileSystemEntries(server.DataDirectory, "*", SearchOption.AllDirectories);
        Assert.NotEmpty(entries);
        if (!TestStorage.IsPostgres)
        {
            Assert.Contains(entries, e => e.EndsWith("atp.db-wal", StringComparison.Ordinal));
        }

        Assert.All(entries, entry => Assert.True((File.GetUnixFileMode(entry) & others) == 0, $"{entry} is {File.GetUnixFileMode(entry)}"));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task First_start_generates_a_bootstrap_admin_key_once_owner_only()
    {
        var directory = Directory.CreateTempSubdirectory("atp-bootstrap-").FullName;
        string key;
        await using (var first = await ServerFixture.StartAsync(directory, withAdminKey: false))
        {
            var path = Path.Combine(directory, "bootstrap-admin.key");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(directory, "keys", "cell-signing.key")));
            key = (await File.ReadAllTextAsync(path)).Trim();
            using var admin = first.ClientWithKey(key);
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "acme", name = "Acme" })).StatusCode);
            await first.RestartAsync();
            Assert.Equal(key, (await File.ReadAllTextAsync(path)).Trim());
            using var again = first.ClientWithKey(key);
            Assert.Equal(HttpStatusCode.OK, (await again.GetAsync("/v1/tenants/acme")).StatusCode);
        }
    }

    [Fact]
    public async Task The_signing_key_survives_a_restart()
    {
        await using var server = await ServerFixture.StartAsync();
        var before = await server.Client.GetStringAsync("/v1/log/keys");
        await server.RestartAsync();
        Assert.Equal(before, await server.Client.GetStringAsync("/v1/log/keys"));
    }
}
