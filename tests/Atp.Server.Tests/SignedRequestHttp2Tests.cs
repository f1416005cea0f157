using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Atp.Core.Keys;
using Atp.Core.Signatures;

namespace Atp.Server.Tests;

/// <summary>
/// Whether a signed request has a body comes from the body itself, never from framing headers: over HTTP/2 a body
/// can arrive in DATA frames with neither content-length nor transfer-encoding, and over HTTP/1.1 chunked.
/// </summary>
public sealed class SignedRequestHttp2Tests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private SigningKey _key = null!;

    public async Task InitializeAsync()
    {
        // Cleartext HTTP/2 with prior knowledge (h2c), so the test talks HTTP/2 over loopback without TLS.
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Kestrel:EndpointDefaults:Protocols"] = "Http2" });
        using var admin = Http2Client();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _server.AdminKey);
        _key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "h2bank", Scopes.EventsWrite, Scopes.EventsRead);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_body_signed_as_bodiless_and_sent_without_length_over_HTTP2_is_refused_and_nothing_is_stored()
    {
        using var client = Http2Client();
        var uri = new Uri(_server.BaseAddress, "/v1/tenants/h2bank/events");

        // Signed over @method and @target-uri only, as a bodiless request is; the body travels in DATA frames.
        var headers = AtpRequestSignature.Sign(_key.Secret, _key.Id, "POST", uri.AbsoluteUri, [], DateTimeOffset.UtcNow.ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        Assert.Null(headers.ContentDigest);
        using var request = Signed(uri, headers, ServerFixture.Batch(2));

        var response = await client.SendAsync(request);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Null(request.Content!.Headers.ContentLength);
        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("content-digest", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0UL, await _server.TreeSizeAsync("h2bank"));
    }

    [Fact]
    public async Task A_swapped_body_under_a_valid_content_digest_is_refused_over_HTTP2()
    {
        using var client = Http2Client();
        var uri = new Uri(_server.BaseAddress, "/v1/tenants/h2bank/events");
        var signedBody = Encoding.UTF8.GetBytes(ServerFixture.Batch(1));
        var headers = AtpRequestSignature.Sign(_key.Secret, _key.Id, "POST", uri.AbsoluteUri, signedBody, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        using var request = Signed(uri, headers, ServerFixture.Batch(5));

        var response = await client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(0UL, await _server.TreeSizeAsync("h2bank"));
    }

    [Fact]
    public async Task A_properly_signed_body_without_length_over_HTTP2_is_stored()
    {
        using var client = Http2Client();
        var uri = new Uri(_server.BaseAddress, "/v1/tenants/h2bank/events");
        var body = ServerFixture.Batch(3);
        var headers = AtpRequestSignature.Sign(_key.Secret, _key.Id, "POST", uri.AbsoluteUri, Encoding.UTF8.GetBytes(body), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        using var request = Signed(uri, headers, body);

        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(3UL, await _server.TreeSizeAsync("h2bank"));
    }

    private HttpClient Http2Client() => new(new SocketsHttpHandler())
    {
        BaseAddress = _server.BaseAddress,
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    // A body of unknown length: HttpClient then sends no content-length, only DATA frames.
    private static HttpRequestMessage Signed(Uri uri, AtpSignedHeaders headers, string body)
    {
        var content = new StreamContent(new UnseekableStream(Encoding.UTF8.GetBytes(body)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (headers.ContentDigest is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Digest", headers.ContentDigest);
        }

        var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = content, Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.TryAddWithoutValidation("Signature-Input", headers.SignatureInput);
        request.Headers.TryAddWithoutValidation("Signature", headers.Signature);
        return request;
    }

    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
