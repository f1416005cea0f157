using Atp.Core.Keys;
using Microsoft.AspNetCore.Authentication;

namespace Atp.Server.Gateway;

/// <summary>Authentication (API keys, signed requests, OIDC tokens), scope policies and the gateway's limiters.</summary>
internal static class GatewayExtensions
{
    private const string SelectorScheme = "Atp";

    public static IServiceCollection AddAtpGateway(this IServiceCollection services, IConfiguration configuration)
    {
        var oidc = configuration.GetSection($"{AtpOptions.Section}:Auth:Oidc").Get<OidcOptions>() ?? new OidcOptions();
        var authentication = services.AddAuthentication(SelectorScheme)
            .AddPolicyScheme(SelectorScheme, null, o => o.ForwardDefaultSelector = context => SelectScheme(context, oidc.Authority is not null))
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (oidc.Authority is not null)
        {
            authentication.AddAtpOidc(oidc);
        }

        services.AddAuthorizationBuilder()
            .AddPolicy(Scopes.EventsWrite, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.EventsWrite)))
            .AddPolicy(Scopes.EventsRead, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.EventsRead) || ReadsPlatformLog(c)))
            .AddPolicy(Scopes.ExportsCreate, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.ExportsCreate)))
            .AddPolicy(Scopes.TenantAdmin, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.TenantAdmin) || AtpClaims.IsPlatformAdmin(c.User)))
            .AddPolicy(Scopes.PlatformAdmin, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.IsPlatformAdmin(c.User)));
        services.AddSingleton<TenantRateLimiter>();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AtpOptions>, RateLimitOptionsValidator>();
        services.AddSingleton<ClientThrottle>();
        services.AddSingleton<NonceCache>();
        services.AddSingleton<FileSecretSealer>();
        services.AddSingleton<ISecretSealer>(sp => sp.GetRequiredService<FileSecretSealer>());
        services.AddSingleton<KekRotation>();
        return services;
    }

    // Platform admins read the platform audit log; tenants' own logs stay with credentials of those tenants.
    private static bool ReadsPlatformLog(Microsoft.AspNetCore.Authorization.AuthorizationHandlerContext context) =>
        AtpClaims.IsPlatformAdmin(context.User)
        && context.Resource is HttpContext http
        && string.Equals(http.GetRouteValue("tenant") as string, Audit.PlatformAuditLog.TenantId, StringComparison.Ordinal);

    /// <summary>A bearer value that is not an ATP key but looks like a JWT goes to OIDC; everything else to the API-key handler.</summary>
    private static string SelectScheme(HttpContext context, bool oidcEnabled)
    {
        if (oidcEnabled && !context.Request.Headers.ContainsKey(ApiKeyAuthenticationHandler.SignatureInputHeader))
        {
            string? header = context.Request.Headers.Authorization;
            if (header is { Length: > 7 } && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                && !header.AsSpan(7).TrimStart().StartsWith(ApiKeyFormat.Prefix, StringComparison.Ordinal) && header.Contains('.', StringComparison.Ordinal))
            {
                return OidcAuthentication.SchemeName;
            }
        }

        return ApiKeyAuthenticationHandler.SchemeName;
    }

    /// <summary>Adds the tenancy, residency, signature-requirement and rate-limit guard to a group of tenant-scoped routes.</summary>
    public static TBuilder RequireTenantAccess<TBuilder>(this TBuilder builder, bool allowSuspendedForPlatformAdmin = false)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilterFactory((factory, next) =>
        {
            var filter = ActivatorUtilities.CreateInstance<TenantAccessFilter>(factory.ApplicationServices, allowSuspendedForPlatformAdmin);
            return invocation => filter.InvokeAsync(invocation, next);
        });
}
