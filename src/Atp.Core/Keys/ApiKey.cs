namespace Atp.Core.Keys;

/// <summary>A stored API key: never the key itself, only its SHA-256.</summary>
public sealed record ApiKey(
    string Id,
    string? TenantId,
    string Name,
    IReadOnlyList<string> Scopes,
    byte[] KeyHash,
    DateTimeOffset CreatedAt)
{
    /// <summary>When the key stops working, if ever (set at creation, or by a rotation's overlap).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>When the key was revoked, if it was.</summary>
    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>
    /// The HMAC secret for signed requests, encrypted by the server under the cell's key-encryption key (never the
    /// plain secret); null when the key was created without signing.
    /// </summary>
    public byte[]? SealedSigningSecret { get; init; }

    /// <summary>
    /// The person the key belongs to, for the two-person rule (docs/security.md): given at creation, else inherited
    /// from the creating credential's person. Null on keys from before owners existed: such a key is its own person.
    /// </summary>
    public string? Owner { get; init; }

    /// <summary>The region of the cell that last served the key, for the second-region alert.</summary>
    public string? LastRegion { get; init; }

    public const string Active = "active";
    public const string Expired = "expired";
    public const string Revoked = "revoked";

    /// <summary><see cref="Active"/>, <see cref="Expired"/> or <see cref="Revoked"/> at <paramref name="now"/>.</summary>
    public string StatusAt(DateTimeOffset now) =>
        RevokedAt is not null ? Revoked : ExpiresAt is { } expires && now >= expires ? Expired : Active;
}

/// <summary>What an API key may do.</summary>
public static class Scopes
{
    public const string EventsWrite = "events:write";
    public const string EventsRead = "events:read";
    public const string TenantAdmin = "tenant:admin";
    public const string PlatformAdmin = "platform:admin";

    /// <summary>Create and cancel export jobs (reading them and their files needs <see cref="EventsRead"/>).</summary>
    public const string ExportsCreate = "exports:create";

    /// <summary>
    /// See classified fields (docs/classification.md) in clear on every read path. Only changes what a reader with
    /// <see cref="EventsRead"/> sees; implied by no other scope (not even <see cref="TenantAdmin"/> or <see cref="PlatformAdmin"/>).
    /// </summary>
    public const string PiiRead = "pii:read";

    /// <summary>Scopes a tenant key may be given (platform:admin is only for platform keys).</summary>
    public static IReadOnlySet<string> TenantScopes { get; } = new HashSet<string>([EventsWrite, EventsRead, TenantAdmin, ExportsCreate, PiiRead], StringComparer.Ordinal);
}
