using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Storage.Contract;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Platform-admin keys can be created, rotated, revoked and given an expiry, through the API and <c>atp admin keys</c>;
/// the generated first-start key never reaches standard output (which ends in journald or a container log).
/// </summary>
public sealed class PlatformKeyTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(string Id, string Key)> CreateAsync(HttpClient admin, string name, DateTimeOffset? expiresAt = null)
    {
        var response = await admin.PostAsJsonAsync("/v1/admin/keys", new { name, expiresAt });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        using var body = JsonDocument.Parse(text);
        Assert.Equal("platform:admin", body.RootElement.GetProperty("scopes")[0].GetString());
        return (body.RootElement.GetProperty("id").GetString()!, body.RootElement.GetProperty("key").GetString()!);
    }

    [Fact]
    public async Task A_platform_key_is_created_used_rotated_and_revoked_and_each_step_is_audited()
    {
        using var bootstrap = _server.Admin;
        var (firstId, firstKey) = await CreateAsync(bootstrap, "ops on-call");
        using var first = _server.ClientWithKey(firstKey);
        Assert.Equal(HttpStatusCode.Created, (await first.PostAsJsonAsync("/v1/tenants", new { id = "viafirst", name = "Via first" })).StatusCode);

        // Rotation with no overlap: the new key works, the old one stops at once.
        var rotated = await first.PostAsJsonAsync($"/v1/admin/keys/{firstId}/rotate", new { overlapSeconds = 0 });
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        var replacement = await rotated.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(firstId, replacement.GetProperty("replaces").GetString());
        using var second = _server.ClientWithKey(replacement.GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/v1/tenants/viafirst")).StatusCode);
        await ProblemAssert.IsProblemAsync(await first.GetAsync("/v1/tenants/viafirst"), HttpStatusCode.Unauthorized, "unauthenticated");

        // A third key, then the second is revoked: it stops at once.
        var (_, thirdKey) = await CreateAsync(second, "backup");
        Assert.Equal(HttpStatusCode.NoContent, (await second.DeleteAsync($"/v1/admin/keys/{replacement.GetProperty("id").GetString()}")).StatusCode);
        await ProblemAssert.IsProblemAsync(await second.GetAsync("/v1/tenants/viafirst"), HttpStatusCode.Unauthorized, "unauthenticated");

        using var third = _server.ClientWithKey(thirdKey);
        var list = await third.GetFromJsonAsync<JsonElement>("/v1/admin/keys");
        var statuses = list.GetProperty("items").EnumerateArray().Select(k => k.GetProperty("status").GetString()).ToList();
        Assert.Equal(["expired", "revoked", "active"], statuses);
        Assert.DoesNotContain(thirdKey, list.GetRawText(), StringComparison.Ordinal);

        await _server.Services.GetRequiredService<Audit.PlatformAuditLog>().FlushAsync(CancellationToken.None);
        await ServerFixture.WaitForProjectionAsync(third, "atp-platform");
        var audit = await third.GetStringAsync("/v1/tenants/atp-platform/events?limit=200");
        foreach (var action in new[] { "platform-key.created", "platform-key.rotated", "platform-key.revoked" })
        {
            Assert.Contains(action, audit, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_last_active_platform_key_cannot_be_revoked_and_only_platform_admins_manage_keys()
    {
        using var bootstrap = _server.Admin;
        var (id, key) = await CreateAsync(bootstrap, "only one");

        await ProblemAssert.IsProblemAsync(await bootstrap.DeleteAsync($"/v1/admin/keys/{id}"), HttpStatusCode.Conflict, "last-platform-key");
        using var still = _server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.OK, (await still.GetAsync("/v1/admin/keys")).StatusCode);

        using var tenantAdmin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        await ProblemAssert.IsProblemAsync(await tenantAdmin.GetAsync("/v1/admin/keys"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await tenantAdmin.PostAsJsonAsync("/v1/admin/keys", new { name = "x" }), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await bootstrap.DeleteAsync("/v1/admin/keys/key_doesnotexist"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task A_platform_key_with_an_expiry_stops_working_when_it_expires()
    {
        // Expiry is tested by moving a manual clock, not by racing a real one on a loaded machine.
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await ServerFixture.StartAsync(clock: clock);
        using var bootstrap = server.Admin;
        var (_, key) = await CreateAsync(bootstrap, "short-lived", clock.GetUtcNow().AddMinutes(10));
        using var client = server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/admin/keys")).StatusCode);

        clock.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));

        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/admin/keys"), HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(await bootstrap.PostAsJsonAsync("/v1/admin/keys", new { name = "past", expiresAt = clock.GetUtcNow().AddMinutes(-1) }), HttpStatusCode.BadRequest, "validation");
    }

    [Theory]
    [InlineData("9223372036854775807")]
    [InlineData("-1")]
    [InlineData("2592001")]
    public async Task An_overlap_out_of_range_is_400_not_500_for_tenant_and_platform_keys(string overlap)
    {
        using var bootstrap = _server.Admin;
        var (platformId, _) = await CreateAsync(bootstrap, "rotate me");
        await _server.CreateTenantWithKeyAsync("acme");
        var tenantKeys = await bootstrap.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/api-keys");
        var tenantKeyId = tenantKeys.GetProperty("items")[0].GetProperty("id").GetString();

        foreach (var path in new[] { $"/v1/admin/keys/{platformId}/rotate", $"/v1/tenants/acme/api-keys/{tenantKeyId}/rotate" })
        {
            var response = await bootstrap.PostAsync(path, ServerFixture.Json("{\"overlapSeconds\":" + overlap + "}"));
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        }
    }

    [Fact]
    public async Task A_platform_admin_lists_and_revokes_the_keys_of_a_suspended_tenant()
    {
        var key = await _server.CreateTenantWithKeyAsync("suspect");
        using var admin = _server.Admin;
        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/suspect/api-keys");
        var keyId = keys.GetProperty("items")[0].GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/suspect", new { status = "suspended" })).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/v1/tenants/suspect/api-keys")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/tenants/suspect/api-keys/{keyId}")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/suspect", new { status = "active" })).StatusCode);
        using var revoked = _server.ClientWithKey(key);
        await ProblemAssert.IsProblemAsync(await revoked.GetAsync("/v1/tenants/suspect/events"), HttpStatusCode.Unauthorized, "unauthenticated");
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Atp_admin_keys_creates_rotates_lists_and_revokes_through_the_api()
    {
        using var bootstrap = _server.Admin;
        var (_, ownKey) = await CreateAsync(bootstrap, "cli operator");
        var work = Directory.CreateTempSubdirectory("atp-admin-keys-").FullName;
        try
        {
            var environment = new Dictionary<string, string> { ["ATP_API_KEY"] = ownKey };
            var url = _server.BaseAddress.ToString();
            var newKeyFile = Path.Combine(work, "new.key");

            var created = await AuditorTests.AtpAsync(environment, "admin", "keys", "create", "--url", url, "--name", "from the cli", "--out", newKeyFile);
            Assert.True(created.ExitCode == 0, created.Error + created.Output);
            var newKey = (await File.ReadAllTextAsync(newKeyFile)).Trim();
            Assert.DoesNotContain(newKey, created.Output, StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(newKeyFile));
            var newId = JsonDocument.Parse(created.Output).RootElement.GetProperty("id").GetString()!;

            var rotated = await AuditorTests.AtpAsync(environment, "admin", "keys", "rotate", newId, "--url", url, "--overlap-seconds", "0", "--out", Path.Combine(work, "rotated.key"));
            Assert.True(rotated.ExitCode == 0, rotated.Error + rotated.Output);
            using var old = _server.ClientWithKey(newKey);
            await ProblemAssert.IsProblemAsync(await old.GetAsync("/v1/admin/keys"), HttpStatusCode.Unauthorized, "unauthenticated");

            var rotatedId = JsonDocument.Parse(rotated.Output).RootElement.GetProperty("id").GetString()!;
            var revoked = await AuditorTests.AtpAsync(environment, "admin", "keys", "revoke", rotatedId, "--url", url);
            Assert.True(revoked.ExitCode == 0, revoked.Error + revoked.Output);

            var listed = await AuditorTests.AtpAsync(environment, "admin", "keys", "list", "--url", url);
            Assert.Equal(0, listed.ExitCode);
            Assert.Contains(rotatedId, listed.Output, StringComparison.Ordinal);
            Assert.Contains("revoked", listed.Output, StringComparison.Ordinal);

            var refused = await AuditorTests.AtpAsync(new Dictionary<string, string> { ["ATP_API_KEY"] = newKey }, "admin", "keys", "list", "--url", url);
            Assert.Equal(1, refused.ExitCode);
            var missing = await AuditorTests.AtpAsync(new Dictionary<string, string> { ["ATP_API_KEY"] = "" }, "admin", "keys", "list", "--url", url);
            Assert.Equal(2, missing.ExitCode);
            Assert.Contains("ATP_API_KEY", missing.Error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task The_first_start_key_is_written_owner_only_and_never_printed_and_may_expire()
    {
        var directory = Directory.CreateTempSubdirectory("atp-bootstrap-print-").FullName;
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        foreach (var arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Atp.Server.dll"), "--urls", $"http://127.0.0.1:{port}", $"--Atp:DataDirectory={directory}",
            "--Atp:Bootstrap:GeneratedKeyLifetime=7.00:00:00", "--Logging:LogLevel:Default=Information",
        }.Concat(await TestStorage.NewStoreArgumentsAsync()))
        {
            start.ArgumentList.Add(arg);
        }

        var printed = new System.Text.StringBuilder();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (printed) { printed.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (printed) { printed.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var path = Path.Combine(directory, "bootstrap-admin.key");
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(2) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(File.Exists(path) && await IsReadyAsync(client)))
            {
                Assert.False(process.HasExited, $"the server exited during start-up: {printed}");
                Assert.True(DateTime.UtcNow < deadline, $"the server did not become ready within 60 s: {printed}");
                await Task.Delay(100);
            }

            var key = (await File.ReadAllTextAsync(path)).Trim();
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            var keys = await client.GetFromJsonAsync<JsonElement>("/v1/admin/keys");
            var expiresAt = keys.GetProperty("items")[0].GetProperty("expiresAt").GetDateTimeOffset();
            Assert.InRange(expiresAt, DateTimeOffset.UtcNow.AddDays(7).AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(7).AddMinutes(1));

            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            string output;
            lock (printed)
            {
                output = printed.ToString();
            }

            Assert.Contains(path, output, StringComparison.Ordinal);
            Assert.DoesNotContain(key, output, StringComparison.Ordinal);
            Assert.DoesNotContain(key[..16], output, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<bool> IsReadyAsync(HttpClient client)
    {
        try
        {
            return (await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
