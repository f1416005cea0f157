using System.Security.Claims;
using Atp.Core.Keys;

namespace Atp.Server.Gateway;

/// <summary>Claims carried by an authenticated ATP caller.</summary>
internal static class AtpClaims
{
    public const string KeyId = "atp:key";
    public const string Tenant = "atp:tenant";
    public const string Scope = "atp:scope";

    public static string? TenantOf(ClaimsPrincipal user) => user.FindFirst(Tenant)?.Value;

    public static bool HasScope(ClaimsPrincipal user, string scope) => user.HasClaim(Scope, scope);

    public static bool IsPlatformAdmin(ClaimsPrincipal user) => HasScope(user, Scopes.PlatformAdmin);
}
