using System.Security.Claims;
using Atp.Core.Storage;

namespace Atp.Server.Gateway;

/// <summary>
/// The person behind a credential, for the two-person rule (docs/security.md): a person signed in through OIDC is
/// their issuer and subject; an API key is its owner, or (a key without one, such as the bootstrap key) itself.
/// </summary>
internal static class Persons
{
    /// <summary>Issuers never contain '#' (OpenID Connect Discovery §2: no fragment), so the issuer and subject cannot be confused.</summary>
    public static string OfOidc(string? issuer, string subject) => $"oidc:{issuer}#{subject}";

    public static string OfKeyWithoutOwner(string keyId) => "key:" + keyId;

    /// <summary>The caller's person; null for a request without a credential.</summary>
    public static async Task<string?> OfAsync(ClaimsPrincipal user, ITenantStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(store);
        if (user.FindFirst(AtpClaims.KeyId)?.Value is not { } keyId)
        {
            return null;
        }

        if (keyId.StartsWith(AtpClaims.UserPrefix, StringComparison.Ordinal))
        {
            return OfOidc(user.FindFirst(AtpClaims.Issuer)?.Value, keyId[AtpClaims.UserPrefix.Length..]);
        }

        // The bootstrap key has no stored row: it is its own person, as every key without an owner is.
        var key = await store.FindApiKeyByIdAsync(keyId, cancellationToken).ConfigureAwait(false);
        return key?.Owner ?? OfKeyWithoutOwner(keyId);
    }
}
