using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Atp.Server.Tests;

/// <summary>
/// A real OpenID Connect provider as far as ATP sees one: a discovery document and a JWKS served over loopback
/// HTTP by Kestrel, with an RSA key generated for this test run, and a token factory signing with that key.
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    private readonly RSA _rsa = RSA.Create(2048);
    private readonly RsaSecurityKey _key;
    private WebApplication _app = null!;

    private OidcProvider() => _key = new RsaSecurityKey(_rsa) { KeyId = "test-key-1" };

    /// <summary>The issuer URL (also the authority ATP is configured with).</summary>
    public string Issuer { get; private set; } = "";

    public const string Audience = "atp-api";

    public static async Task<OidcProvider> StartAsync()
    {
        var provider = new OidcProvider();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        provider._app = builder.Build();
        provider._app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = provider.Issuer,
            ["jwks_uri"] = provider.Issuer + "/jwks",
            ["authorization_endpoint"] = provider.Issuer + "/authorize",
            ["token_endpoint"] = provider.Issuer + "/token",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        provider._app.MapGet("/jwks", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(provider._rsa.ExportParameters(false)) { KeyId = provider._key.KeyId });
            return Results.Json(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, use = "sig", alg = "RS256", n = jwk.N, e = jwk.E } } });
        });
        await provider._app.StartAsync();
        provider.Issuer = provider._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return provider;
    }

    /// <summary>Server settings that point ATP at this provider.</summary>
    public Dictionary<string, string?> ServerSettings() => new()
    {
        ["Atp:Auth:Oidc:Authority"] = Issuer,
        ["Atp:Auth:Oidc:Audience"] = Audience,
        ["Atp:Auth:Oidc:RequireHttpsMetadata"] = "false",
    };

    /// <summary>A signed token; every part can be overridden to build a bad one.</summary>
    public string Token(
        string subject, string? tenant, IEnumerable<string> roles, string? audience = Audience, string? issuer = null,
        DateTime? expires = null, string? region = null, RSA? signWith = null, string tenantClaim = "atp_tenant")
    {
        var claims = new List<Claim> { new("sub", subject) };
        if (tenant is not null)
        {
            claims.Add(new Claim(tenantClaim, tenant));
        }

        if (region is not null)
        {
            claims.Add(new Claim("atp_region", region));
        }

        claims.AddRange(roles.Select(r => new Claim("roles", r)));
        var now = DateTime.UtcNow;
        var expiry = expires ?? now.AddMinutes(10);
        var key = signWith is null ? _key : new RsaSecurityKey(signWith) { KeyId = _key.KeyId };
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Issuer,
            Audience = audience,
            Subject = new ClaimsIdentity(claims),
            IssuedAt = expiry < now ? expiry.AddMinutes(-10) : now,
            NotBefore = expiry < now ? expiry.AddMinutes(-10) : now,
            Expires = expiry,
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _rsa.Dispose();
    }
}
