using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Signatures;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// No request may produce a 5xx: a table of malformed requests goes to every mapped endpoint, with a platform-admin key
/// and with a tenant key, and every refusal must be a 4xx problem under ATP's problem types.
/// </summary>
public sealed class MalformedRequestTests : IAsyncLifetime
{
    private static readonly string[] Bodies =
    [
        "{",
        "[]",
        "null",
        "\"text\"",
        "1e999",
        "{\"name\":123,\"id\":[],\"scopes\":\"x\",\"events\":5,\"overlapSeconds\":9223372036854775807,\"expiresAt\":\"not a date\",\"status\":7,\"requireSignedRequests\":\"yes\",\"limits\":{\"ingestPerSecond\":\"many\",\"queryPerSecond\":1e999,\"readCostPerSecond\":-1,\"maxStoredEvents\":-1,\"maxStoredBytes\":1.5}}",
        "{\"events\":[{\"type\":\"\\u0000\",\"occurredAt\":\"9999-99-99\",\"actor\":[],\"action\":{},\"targets\":\"x\",\"data\":[1]}]}",
        "{\"id\":\"" + new string('a', 100_000) + "\"}",
        "{\"overlapSeconds\":-9223372036854775808,\"expiresAt\":\"0001-01-01T00:00:00Z\"}",
        "{\"format\":7,\"fromIndex\":-1,\"toIndex\":1e999,\"from\":\"yesterday\",\"to\":[],\"filters\":{\"actor\":5,\"q\":\"\\u0000\",\"from\":\"x\"}}",
        "{\"format\":\"csv\",\"fromIndex\":18446744073709551615,\"toIndex\":18446744073709551615,\"filters\":[]}",
        "{\"format\":\"ndjson\",\"from\":\"9999-12-31T23:59:59Z\",\"to\":\"0001-01-01T00:00:00Z\",\"filters\":{\"action\":\"*\",\"targetId\":\"\"}}",
        "{\"schema\":{\"type\":\"objectx\",\"$ref\":\"http://example.com/\",\"pattern\":\"((\"},\"compatibility\":7,\"requireRegisteredTypes\":\"yes\"}",
        "{\"schema\":{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"minimum\":1e999},\"compatibility\":\"NONE\"}",
        "{\"schema\":true,\"compatibility\":\"FULL_TRANSITIVE\"}",
        "{\"changes\":{\"requireSignedRequests\":\"yes\",\"retention\":{},\"requireRegisteredTypes\":[]},\"reason\":\"\\u0000\\u202e\",\"owner\":\"\\u0007\"}",
        "{\"changes\":[],\"reason\":7,\"owner\":\"" + new string('o', 201) + "\"}",
        "{\"changes\":{\"requireRegisteredTypes\":true},\"reason\":\"valid, to reach the checks past the body\"}",
    ];

    private const string GarbageQuery = "?limit=-1&cursor=%00&from=x&to=y&index=99999999999999999999&size=-5&verify=maybe&proof=2&order=sideways&q=%00&actor=%01";

    private ServerFixture _server = null!;
    private string _tenantKey = null!;
    private string _keyId = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
        _tenantKey = await _server.CreateTenantWithKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead, Scopes.TenantAdmin, Scopes.ExportsCreate);
        using var admin = _server.Admin;
        var keys = JsonDocument.Parse(await admin.GetStringAsync("/v1/tenants/acme/api-keys"));
        _keyId = keys.RootElement.GetProperty("items")[0].GetProperty("id").GetString()!;
        using var tenant = _server.ClientWithKey(_tenantKey);
        Assert.Equal(HttpStatusCode.Created, (await tenant.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(tenant, "acme", 3);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private IEnumerable<(string Method, string Pattern)> Endpoints() =>
        _server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, "/" + e.RoutePattern.RawText!.TrimStart('/'))))
            .Where(e => e.Item2.StartsWith("/v1/", StringComparison.Ordinal)) // ATP's API (not the framework's OpenAPI and Scalar pages)
            .Distinct();

    private IEnumerable<string> Paths(string pattern)
    {
        // A tile path ({level}/{**tile}) gets the same garbage as an index, and a well-formed tile for the first row.
        string Fill(string index, string id, string keyId) =>
            pattern.Replace("{tenant}", "acme", StringComparison.Ordinal).Replace("{level}", index, StringComparison.Ordinal)
                .Replace("{**tile}", index == "0" ? "000.p/3" : index, StringComparison.Ordinal).Replace("{index}", index, StringComparison.Ordinal)
                .Replace("{id}", id, StringComparison.Ordinal).Replace("{keyId}", keyId, StringComparison.Ordinal)
                .Replace("{type}", index == "0" ? "app.audit" : id, StringComparison.Ordinal).Replace("{version}", index, StringComparison.Ordinal);

        yield return Fill("0", Guid.Empty.ToString(), _keyId);
        yield return Fill("-1", new string('x', 300), "%E2%80%AE");
        yield return Fill("99999999999999999999", "%01%02", new string('k', 300));
        if (pattern.Contains("{tenant}", StringComparison.Ordinal))
        {
            // (A NUL in the path is refused by Kestrel itself, before any application code, with a bare 400.)
            yield return pattern.Replace("{tenant}", "bad%20tenant%E2%80%AE", StringComparison.Ordinal).Replace("{index}", "0", StringComparison.Ordinal)
                .Replace("{id}", "x", StringComparison.Ordinal).Replace("{keyId}", "k", StringComparison.Ordinal)
                .Replace("{type}", "t", StringComparison.Ordinal).Replace("{version}", "1", StringComparison.Ordinal);
        }
    }

    private static async Task AssertNoServerErrorAsync(HttpResponseMessage response, string what)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode < 500, $"{what} → {(int)response.StatusCode}: {text}");
        if ((int)response.StatusCode >= 400)
        {
            Assert.True(response.Content.Headers.ContentType?.MediaType == "application/problem+json", $"{what} → {(int)response.StatusCode} without a problem body: {text}");
            using var problem = JsonDocument.Parse(text);
            Assert.StartsWith("https://atp.dev/problems/", problem.RootElement.GetProperty("type").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Every_endpoint_answers_a_table_of_malformed_requests_with_4xx_problems_never_5xx()
    {
        var endpoints = Endpoints().ToList();
        Assert.True(endpoints.Count > 20, $"only {endpoints.Count} endpoints were found");
        var sent = 0;
        foreach (var key in new[] { _server.AdminKey!, _tenantKey })
        {
            using var client = _server.ClientWithKey(key);
            foreach (var (method, pattern) in endpoints)
            {
                foreach (var path in Paths(pattern))
                {
                    using (var query = new HttpRequestMessage(new HttpMethod(method), path + GarbageQuery))
                    {
                        await AssertNoServerErrorAsync(await client.SendAsync(query), $"{method} {path}{GarbageQuery}");
                    }

                    if (method is "GET" or "HEAD" or "DELETE")
                    {
                        sent++;
                        continue;
                    }

                    foreach (var body in Bodies)
                    {
                        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = ServerFixture.Json(body) };
                        await AssertNoServerErrorAsync(await client.SendAsync(request), $"{method} {path} with {body[..Math.Min(body.Length, 60)]}");
                        sent++;
                    }

                    using var plain = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent("{}", Encoding.UTF8, "text/plain") };
                    await AssertNoServerErrorAsync(await client.SendAsync(plain), $"{method} {path} as text/plain");
                }
            }
        }

        Assert.True(sent > 200, $"only {sent} requests were sent");
    }

    [Theory]
    [InlineData("PUT", "/v1/tenants/acme/events")]
    [InlineData("GET", "/v1/no-such-route")]
    [InlineData("DELETE", "/v1/log/keys")]
    public async Task Unmapped_routes_and_methods_answer_atp_problems(string method, string path)
    {
        using var client = _server.ClientWithKey(_tenantKey);

        var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed, $"{(int)response.StatusCode}");
        await AssertNoServerErrorAsync(response, $"{method} {path}");
    }

    [Fact]
    public async Task A_signed_request_with_a_body_over_the_limit_is_413_not_401_or_500()
    {
        using var admin = _server.Admin;
        var key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bigbank", Scopes.EventsWrite);
        var body = Encoding.UTF8.GetBytes("{\"events\":[],\"pad\":\"" + new string('x', 2 * 1024 * 1024) + "\"}");
        var uri = new Uri(_server.BaseAddress, "/v1/tenants/bigbank/events");
        var headers = AtpRequestSignature.Sign(key.Secret, key.Id, "POST", uri.AbsoluteUri, body, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Content.Headers.TryAddWithoutValidation("Content-Digest", headers.ContentDigest);
        request.Headers.TryAddWithoutValidation("Signature-Input", headers.SignatureInput);
        request.Headers.TryAddWithoutValidation("Signature", headers.Signature);

        var response = await _server.Client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "too-large");
    }

    [Fact]
    public async Task A_bad_chunk_size_is_400_problem()
    {
        var response = await RawAsync(
            "POST /v1/tenants/acme/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + _tenantKey + "\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            trickle: null);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.DoesNotContain("HTTP/1.1 500", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_trickled_below_the_minimum_data_rate_is_408_not_500()
    {
        var response = await RawAsync(
            "POST /v1/tenants/acme/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + _tenantKey + "\r\nContent-Type: application/json\r\n"
            + "Content-Length: 4000\r\n\r\n",
            trickle: TimeSpan.FromSeconds(1));

        Assert.StartsWith("HTTP/1.1 408", response, StringComparison.Ordinal);
    }

    // Sends raw HTTP/1.1 (what HttpClient would never send) and returns what the server answered before it closed.
    private async Task<string> RawAsync(string head, TimeSpan? trickle)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _server.BaseAddress.Port);
        using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var buffer = new byte[16 * 1024];
        var received = new StringBuilder();
        var deadline = DateTime.UtcNow.AddSeconds(40);
        var readTask = stream.ReadAsync(buffer.AsMemory()).AsTask();
        while (DateTime.UtcNow < deadline)
        {
            if (trickle is { } pause)
            {
                var done = await Task.WhenAny(readTask, Task.Delay(pause));
                if (done != readTask)
                {
                    try
                    {
                        await stream.WriteAsync("{"u8.ToArray());
                    }
                    catch (IOException)
                    {
                        // The server closed the connection; what it sent is read below.
                    }

                    continue;
                }
            }

            var read = await readTask;
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
            if (received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                break;
            }

            readTask = stream.ReadAsync(buffer.AsMemory()).AsTask();
        }

        return received.ToString();
    }
}
