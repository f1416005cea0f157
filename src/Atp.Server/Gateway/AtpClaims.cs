using System.Security.Claims;
using Atp.Core.Keys;

namespace Atp.Server.Gateway;

/// <summary>Claims carried by an authenticated ATP caller.</summary>
internal static class AtpClaims
{
    public const string KeyId = "atp:key";
    public const string Tenant = "atp:tenant";
    public const string Scope = "atp:scope";

    /// <summary>The issuer of the OIDC token a person signed in with.</summary>
    public const string Issuer = "atp:issuer";

    /// <summary>Set when the request carried a valid RFC 9421 signature.</summary>
    public const string Signed = "atp:signed";

    /// <summary>The key id claim of a person signed in through OIDC is this prefix and the token's subject.</summary>
    public const string UserPrefix = "user:";

    public static bool IsSigned(ClaimsPrincipal user) => user.HasClaim(Signed, "true");

    public static bool IsApiKey(ClaimsPrincipal user) => user.FindFirst(KeyId)?.Value is { } id && !id.StartsWith(UserPrefix, StringComparison.Ordinal);

    public static string? TenantOf(ClaimsPrincipal user) => user.FindFirst(Tenant)?.Value;

    public static bool HasScope(ClaimsPrincipal user, string scope) => user.HasClaim(Scope, scope);

    public static bool IsPlatformAdmin(ClaimsPrincipal user) => HasScope(user, Scopes.PlatformAdmin);

    /// <summary>The credential recorded in the leaves it submits: an API key by its id, a person by OIDC issuer and subject.</summary>
    public static Atp.Core.Events.Submitter? SubmitterOf(ClaimsPrincipal user) =>
        user.FindFirst(KeyId)?.Value switch
        {
            null => null,
            var id when id.StartsWith(UserPrefix, StringComparison.Ordinal) => new("oidc", id[UserPrefix.Length..], user.FindFirst(Issuer)?.Value),
            var id => new("api-key", id, null),
        };
}
