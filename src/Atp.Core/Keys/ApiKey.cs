namespace Atp.Core.Keys;

/// <summary>A stored API key: never the key itself, only its SHA-256.</summary>
public sealed record ApiKey(
    string Id,
    string? TenantId,
    string Name,
    IReadOnlyList<string> Scopes,
    byte[] KeyHash,
    DateTimeOffset CreatedAt);

/// <summary>What an API key may do.</summary>
public static class Scopes
{
    public const string EventsWrite = "events:write";
    public const string EventsRead = "events:read";
    public const string TenantAdmin = "tenant:admin";
    public const string PlatformAdmin = "platform:admin";

    /// <summary>Scopes a tenant key may be given (platform:admin is only for platform keys).</summary>
    public static IReadOnlySet<string> TenantScopes { get; } = new HashSet<string>([EventsWrite, EventsRead, TenantAdmin], StringComparer.Ordinal);
}
