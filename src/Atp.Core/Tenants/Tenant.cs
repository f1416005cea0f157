using System.Text.RegularExpressions;

namespace Atp.Core.Tenants;

/// <summary>Where a tenant's data may live: only its home region (strict) or also the listed regions (permitted).</summary>
public sealed record Residency(string Mode, IReadOnlyList<string> AllowedRegions)
{
    public const string Strict = "strict";
    public const string Permitted = "permitted";
}

/// <summary>A customer of the product team: owner of one log.</summary>
public sealed record Tenant(
    string Id,
    string Name,
    string Edition,
    string HomeRegion,
    Residency Residency,
    string Status,
    DateTimeOffset CreatedAt)
{
    public const string Active = "active";
    public const string Suspended = "suspended";
    public const string DefaultEdition = "default";
    public const string EnterpriseEdition = "enterprise";

    public bool IsActive => Status == Active;

    /// <summary>
    /// Whether a cell of <paramref name="region"/> may hold and serve this tenant's data: its home region always;
    /// under a permitted policy also the allowed regions; nowhere else.
    /// </summary>
    public bool IsServedIn(string region) =>
        string.Equals(region, HomeRegion, StringComparison.Ordinal)
        || (Residency.Mode == Residency.Permitted && Residency.AllowedRegions.Contains(region, StringComparer.Ordinal));
}

/// <summary>Rules for tenant identifiers and names, shared by every entry point.</summary>
public static partial class TenantRules
{
    /// <summary>Lowercase letters, digits and '-', 2–63 characters, starting with a letter or digit: safe in URLs, origins and file names.</summary>
    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    /// <summary>Region names such as westeu or us-east.</summary>
    public static bool IsValidRegion(string? region) => region is not null && RegionPattern().IsMatch(region);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{1,62}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[a-z][a-z0-9-]{1,31}$")]
    private static partial Regex RegionPattern();
}
