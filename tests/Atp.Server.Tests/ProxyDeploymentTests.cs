using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Signatures;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Behind a TLS proxy: forwarded headers count only from configured proxies (client address for audit and limits,
/// public URL for signed requests), and the listen address comes from the usual .NET sources.
/// </summary>
public sealed class ProxyDeploymentTests
{
    private static async Task<List<JsonElement>> SecurityEventsAsync(ServerFixture server)
    {
        await server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = server.Admin;
        await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
        var page = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000");
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event").Clone()).Where(e => e.GetProperty("type").GetString() == PlatformEvents.SecurityType)];
    }

    private static async Task<HttpResponseMessage> GetWithForwardedForAsync(ServerFixture server, string path, string forwardedFor, string? key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", forwardedFor);
        if (key is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        }

        return await server.Client.SendAsync(request);
    }

    [Fact]
    public async Task With_a_trusted_proxy_audit_records_carry_the_forwarded_client_address()
    {
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Gateway:KnownProxies:0"] = "127.0.0.1" });

        var response = await GetWithForwardedForAsync(server, "/v1/tenants/acme/events", "203.0.113.50", ApiKeyFormat.Generate());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var failure = Assert.Single(await SecurityEventsAsync(server), e => e.GetProperty("action").GetString() == PlatformEvents.AuthFailed);
        Assert.Equal("203.0.113.50", failure.GetProperty("context").GetProperty("ip").GetString());
    }

    [Fact]
    public async Task Without_a_trusted_proxy_forwarded_headers_are_ignored()
    {
        await using var server = await ServerFixture.StartAsync();

        var response = await GetWithForwardedForAsync(server, "/v1/tenants/acme/events", "203.0.113.50", ApiKeyFormat.Generate());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var failure = Assert.Single(await SecurityEventsAsync(server), e => e.GetProperty("action").GetString() == PlatformEvents.AuthFailed);
        Assert.Equal("127.0.0.1", failure.GetProperty("context").GetProperty("ip").GetString());
    }

    [Fact]
    public async Task A_forwarded_address_from_an_untrusted_peer_is_ignored_even_when_some_proxy_is_trusted()
    {
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Gateway:KnownNetworks:0"] = "10.0.0.0/8" });

        var response = await GetWithForwardedForAsync(server, "/v1/tenants/acme/events", "203.0.113.50", ApiKeyFormat.Generate());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var failure = Assert.Single(await SecurityEventsAsync(server), e => e.GetProperty("action").GetString() == PlatformEvents.AuthFailed);
        Assert.Equal("127.0.0.1", failure.GetProperty("context").GetProperty("ip").GetString());
    }

    [Theory]
    [InlineData(true, HttpStatusCode.Created)]
    [InlineData(false, HttpStatusCode.Unauthorized)]
    public async Task A_request_signed_for_the_public_URL_verifies_behind_a_trusted_proxy_only(bool trusted, HttpStatusCode expected)
    {
        var settings = new Dictionary<string, string?>();
        if (trusted)
        {
            settings["Atp:Gateway:KnownProxies:0"] = "127.0.0.1";
        }

        await using var server = await ServerFixture.StartAsync(settings: settings);
        using var admin = server.Admin;
        var key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bank", Scopes.EventsWrite);
        var body = Encoding.UTF8.GetBytes(ServerFixture.Batch(1));
        var headers = AtpRequestSignature.Sign(key.Secret, key.Id, "POST", "https://audit.example.com/v1/tenants/bank/events", body, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tenants/bank/events") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Content.Headers.TryAddWithoutValidation("Content-Digest", headers.ContentDigest);
        request.Headers.TryAddWithoutValidation("Signature-Input", headers.SignatureInput);
        request.Headers.TryAddWithoutValidation("Signature", headers.Signature);
        request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", "https");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", "audit.example.com");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "198.51.100.7");

        var response = await server.Client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(trusted ? 1UL : 0UL, await server.TreeSizeAsync("bank"));
    }

    [Fact]
    public async Task ASPNETCORE_URLS_chooses_the_address_and_a_taken_port_is_one_clear_sentence()
    {
        var directory = Directory.CreateTempSubdirectory("atp-urls-").FullName;
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var takenPort = ((IPEndPoint)taken.LocalEndpoint).Port;
        var freePort = FreePort();
        try
        {
            // The environment alone names the address (no --urls): the server must listen there.
            using (var server = Start(directory, new Dictionary<string, string> { ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{freePort}" }, out var output))
            {
                using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{freePort}"), Timeout = TimeSpan.FromSeconds(2) };
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (!await IsLiveAsync(client))
                {
                    Assert.False(server.HasExited, $"the server exited: {output}");
                    Assert.True(DateTime.UtcNow < deadline, $"the server did not listen on ASPNETCORE_URLS within 60 s: {output}");
                    await Task.Delay(100);
                }

                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync();
            }

            // ASPNETCORE_HTTP_PORTS names a port that is taken: exit 1 with one sentence, no stack trace.
            using (var server = Start(directory, new Dictionary<string, string> { ["ASPNETCORE_HTTP_PORTS"] = takenPort.ToString() }, out var output))
            {
                Assert.True(server.WaitForExit(TimeSpan.FromSeconds(60)), "the server did not exit on a taken port");
                server.WaitForExit();
                var text = output.ToString();
                Assert.Equal(1, server.ExitCode);
                Assert.Contains("ATP cannot start", text, StringComparison.Ordinal);
                Assert.Contains(takenPort.ToString(), text, StringComparison.Ordinal);
                Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Process Start(string directory, Dictionary<string, string> environment, out StringBuilder output)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Atp.Server.dll"));
        start.ArgumentList.Add($"--Atp:DataDirectory={directory}");
        start.ArgumentList.Add($"--Atp:Bootstrap:AdminKey={ApiKeyFormat.Generate()}");
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var text = new StringBuilder();
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (text) { text.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (text) { text.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        output = text;
        return process;
    }

    private static async Task<bool> IsLiveAsync(HttpClient client)
    {
        try
        {
            return (await client.GetAsync("/livez")).StatusCode == HttpStatusCode.OK;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
