using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Signatures;

namespace Atp.Server.Tests;

/// <summary>A signing key as the create-key response returns it.</summary>
public sealed record SigningKey(string Id, string Key, byte[] Secret);

/// <summary>
/// Signs every request it sends the way a client library would (RFC 9421, label atp); knobs let a test break one
/// thing at a time.
/// </summary>
public sealed class SigningHandler(SigningKey key) : DelegatingHandler(new HttpClientHandler())
{
    /// <summary>Also send the bearer API key.</summary>
    public bool SendBearer { get; set; }

    /// <summary>Replaces the body after signing (tampering in transit).</summary>
    public byte[]? TamperBody { get; set; }

    /// <summary>Shifts the created parameter.</summary>
    public TimeSpan ClockOffset { get; set; }

    /// <summary>Signs with this secret instead of the key's.</summary>
    public byte[]? WrongSecret { get; set; }

    /// <summary>The headers of the last signed request (to replay it).</summary>
    public AtpSignedHeaders? Last { get; private set; }

    /// <summary>When set, the next request reuses these headers verbatim instead of signing.</summary>
    public AtpSignedHeaders? Replay { get; set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var headers = Replay ?? AtpRequestSignature.Sign(
            WrongSecret ?? key.Secret, key.Id, request.Method.Method, request.RequestUri!.AbsoluteUri, body,
            (DateTimeOffset.UtcNow + ClockOffset).ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        Last = headers;
        request.Headers.TryAddWithoutValidation("Signature-Input", headers.SignatureInput);
        request.Headers.TryAddWithoutValidation("Signature", headers.Signature);
        if (request.Content is not null)
        {
            var contentType = request.Content.Headers.ContentType;
            request.Content = new ByteArrayContent(TamperBody ?? body);
            request.Content.Headers.ContentType = contentType;
            if (headers.ContentDigest is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Digest", headers.ContentDigest);
            }
        }

        if (SendBearer)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key.Key);
        }

        return await base.SendAsync(request, cancellationToken);
    }
}

internal static class SigningKeys
{
    /// <summary>Creates an enterprise tenant (signatures required by default) and a signing key for it.</summary>
    public static async Task<SigningKey> CreateEnterpriseTenantAsync(HttpClient admin, string tenant, params string[] scopes)
    {
        var created = await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = $"Tenant {tenant}", edition = "enterprise" });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        return await CreateAsync(admin, tenant, scopes);
    }

    /// <summary>Creates a signing key for the tenant through the API.</summary>
    public static async Task<SigningKey> CreateAsync(HttpClient admin, string tenant, params string[] scopes)
    {
        var response = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "signer", scopes, signing = true });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, text);
        using var body = JsonDocument.Parse(text);
        var secret = Convert.FromBase64String(body.RootElement.GetProperty("signingSecret").GetString()!);
        Assert.Equal(32, secret.Length);
        return new SigningKey(body.RootElement.GetProperty("id").GetString()!, body.RootElement.GetProperty("key").GetString()!, secret);
    }
}
