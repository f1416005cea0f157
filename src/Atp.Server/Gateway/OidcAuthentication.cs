using System.Security.Claims;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Atp.Server.Gateway;

/// <summary>
/// People sign in through the organisation's OpenID Connect provider; ATP validates its JWTs (issuer and keys from
/// the discovery document, audience, expiry, signature all required) and maps the token to ATP claims: the tenant
/// from <c>atp_tenant</c> (or <c>tid</c>), scopes from the <c>roles</c> claim.
/// </summary>
internal static class OidcAuthentication
{
    public const string SchemeName = "Oidc";

    public const string PlatformAdminRole = "atp.platform-admin";
    public const string TenantAdminRole = "atp.tenant-admin";
    public const string AuditorRole = "atp.auditor";
    public const string WriterRole = "atp.writer";

    /// <summary>Classified fields in clear (<c>pii:read</c>); granted only by this role, reading still needs another.</summary>
    public const string PiiReaderRole = "atp.pii-reader";

    private const string FailureItem = "atp.oidc.failure";

    public static AuthenticationBuilder AddAtpOidc(this AuthenticationBuilder builder, OidcOptions oidc) =>
        builder.AddJwtBearer(SchemeName, jwt =>
        {
            jwt.Authority = oidc.Authority!.ToString();
            jwt.Audience = oidc.Audience;
            jwt.RequireHttpsMetadata = oidc.RequireHttpsMetadata;
            jwt.MapInboundClaims = false;
            jwt.TokenValidationParameters = new TokenValidationParameters
            {
                ValidateIssuer = true,
                ValidateAudience = true,
                ValidateLifetime = true,
                ValidateIssuerSigningKey = true,
                RequireExpirationTime = true,
                RequireSignedTokens = true,
                RequireAudience = true,
                ClockSkew = TimeSpan.FromSeconds(30),
            };
            jwt.Events = new JwtBearerEvents
            {
                OnTokenValidated = context =>
                {
                    var atp = context.HttpContext.RequestServices.GetRequiredService<IOptions<AtpOptions>>().Value;
                    var failure = MapClaims(context.Principal!, atp);
                    if (failure is not null)
                    {
                        context.Fail(failure);
                    }

                    return Task.CompletedTask;
                },
                OnAuthenticationFailed = context =>
                {
                    context.HttpContext.Items[FailureItem] = Describe(context.Exception);
                    return Task.CompletedTask;
                },
                OnChallenge = async context =>
                {
                    context.HandleResponse();
                    var detail = context.HttpContext.Items[FailureItem] as string
                        ?? context.AuthenticateFailure?.Message
                        ?? "Send a bearer token issued by the configured OpenID Connect provider.";
                    context.HttpContext.RequestServices.GetRequiredService<PlatformAuditLog>()
                        .Report(PlatformEvents.Refusal(context.HttpContext, PlatformEvents.AuthFailed, null, "oidc: " + detail));
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    await Problem.Unauthenticated(detail).ExecuteAsync(context.HttpContext).ConfigureAwait(false);
                },
                OnForbidden = context => Problem.Forbidden("The token's roles do not allow this call.").ExecuteAsync(context.HttpContext),
            };
        });

    /// <summary>Adds the ATP identity to a validated token; returns why the token is refused, if it is.</summary>
    internal static string? MapClaims(ClaimsPrincipal principal, AtpOptions atp)
    {
        var oidc = atp.Auth.Oidc;
        if (principal.FindFirst("atp_region")?.Value is { } region && !string.Equals(region, atp.Region, StringComparison.Ordinal))
        {
            return $"The token was issued for region '{region}'; this cell serves '{atp.Region}'.";
        }

        // ATP's own claim names are set only here; a token that brings its own is refused rather than trusted.
        if (principal.Claims.Any(c => c.Type.StartsWith("atp:", StringComparison.Ordinal)))
        {
            return "The token carries claims reserved for ATP.";
        }

        var subjectClaim = principal.FindFirst("sub");
        var subject = subjectClaim?.Value;
        if (string.IsNullOrEmpty(subject))
        {
            return "The token has no subject (sub).";
        }

        var claims = new List<Claim> { new(AtpClaims.KeyId, AtpClaims.UserPrefix + subject), new(AtpClaims.Issuer, principal.FindFirst("iss")?.Value ?? subjectClaim!.Issuer) };
        if ((principal.FindFirst(oidc.TenantClaim) ?? principal.FindFirst("tid"))?.Value is { Length: > 0 } tenant)
        {
            claims.Add(new Claim(AtpClaims.Tenant, tenant));
        }

        var scopes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var role in principal.FindAll(oidc.RolesClaim).Select(c => c.Value))
        {
            switch (role)
            {
                case PlatformAdminRole:
                    scopes.Add(Scopes.PlatformAdmin);
                    break;
                case TenantAdminRole:
                    scopes.Add(Scopes.TenantAdmin);
                    scopes.Add(Scopes.EventsRead);
                    scopes.Add(Scopes.ExportsCreate);
                    break;
                case AuditorRole:
                    scopes.Add(Scopes.EventsRead);
                    scopes.Add(Scopes.ExportsCreate);
                    break;
                case WriterRole:
                    scopes.Add(Scopes.EventsWrite);
                    break;
                case PiiReaderRole:
                    scopes.Add(Scopes.PiiRead);
                    break;
            }
        }

        claims.AddRange(scopes.Select(s => new Claim(AtpClaims.Scope, s)));
        principal.AddIdentity(new ClaimsIdentity(claims, SchemeName));
        return null;
    }

    // Token-library messages can echo token content; callers get a fixed sentence per failure kind.
    private static string Describe(Exception exception) => exception switch
    {
        SecurityTokenExpiredException => "The token has expired.",
        SecurityTokenNotYetValidException => "The token is not yet valid.",
        SecurityTokenInvalidAudienceException => "The token's audience is not this service.",
        SecurityTokenInvalidIssuerException => "The token's issuer is not the configured authority.",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "The token's signature does not verify with the authority's keys.",
        SecurityTokenNoExpirationException => "The token has no expiry.",
        SecurityTokenMalformedException => "The token is malformed.",
        _ => "The bearer token is not valid.",
    };
}
