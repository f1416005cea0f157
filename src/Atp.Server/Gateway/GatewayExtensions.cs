using Atp.Core.Keys;
using Microsoft.AspNetCore.Authentication;

namespace Atp.Server.Gateway;

/// <summary>Authentication and scope policies.</summary>
internal static class GatewayExtensions
{
    public static IServiceCollection AddAtpGateway(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Scopes.EventsWrite, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.EventsWrite)))
            .AddPolicy(Scopes.EventsRead, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.EventsRead)))
            .AddPolicy(Scopes.TenantAdmin, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.HasScope(c.User, Scopes.TenantAdmin) || AtpClaims.IsPlatformAdmin(c.User)))
            .AddPolicy(Scopes.PlatformAdmin, p => p.RequireAuthenticatedUser().RequireAssertion(c => AtpClaims.IsPlatformAdmin(c.User)));
        return services;
    }

    /// <summary>Adds the tenancy guard to a group of tenant-scoped routes.</summary>
    public static TBuilder RequireTenantAccess<TBuilder>(this TBuilder builder, bool allowSuspendedForPlatformAdmin = false)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilterFactory((factory, next) =>
        {
            var filter = ActivatorUtilities.CreateInstance<TenantAccessFilter>(factory.ApplicationServices, allowSuspendedForPlatformAdmin);
            return invocation => filter.InvokeAsync(invocation, next);
        });
}
