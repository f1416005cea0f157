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

    /// <summary>
    /// A read-only copy of another cell's log, imported from export bundles (atp import): served (checkpoints, proofs,
    /// search) but never appended to by ingestion nor signed by this cell.
    /// </summary>
    public const string Replica = "replica";
    public const string DefaultEdition = "default";
    public const string EnterpriseEdition = "enterprise";

    /// <summary>Whether the tenant is served: an active tenant or a read-only replica.</summary>
    public bool IsActive => Status is Active or Replica;

    public bool IsReplica => Status == Replica;

    /// <summary>Per-tenant overrides of the edition's defaults.</summary>
    public TenantSettings Settings { get; init; } = TenantSettings.None;

    /// <summary>Whether a bare bearer API key is refused: the tenant's setting, else true for the enterprise edition.</summary>
    public bool RequiresSignedRequests => Settings.RequireSignedRequests ?? Edition == EnterpriseEdition;

    /// <summary>
    /// Whether a cell of <paramref name="region"/> may hold and serve this tenant's data: its home region always;
    /// under a permitted policy also the allowed regions; nowhere else.
    /// </summary>
    public bool IsServedIn(string region) =>
        string.Equals(region, HomeRegion, StringComparison.Ordinal)
        || (Residency.Mode == Residency.Permitted && Residency.AllowedRegions.Contains(region, StringComparer.Ordinal));
}

/// <summary>
/// Settings a platform admin may change per tenant; null means "the edition's default".
/// </summary>
/// <param name="RequireSignedRequests">Refuse requests authenticated only by a bearer API key.</param>
/// <param name="IngestPerSecond">Ingest requests per second allowed for the tenant.</param>
/// <param name="QueryPerSecond">Read requests per second allowed for the tenant.</param>
public sealed record TenantSettings(bool? RequireSignedRequests, int? IngestPerSecond, int? QueryPerSecond)
{
    public static TenantSettings None { get; } = new(null, null, null);

    /// <summary>Ingested events per second allowed for the tenant (a 1,000-event batch uses 1,000).</summary>
    public int? IngestEventsPerSecond { get; init; }

    /// <summary>Ingested request-body bytes per second allowed for the tenant.</summary>
    public int? IngestBytesPerSecond { get; init; }

    /// <summary>Read-cost units per second allowed for the tenant (a search page costs more with a higher limit and with proofs).</summary>
    public int? ReadCostPerSecond { get; init; }

    /// <summary>Export jobs the tenant may have queued or running at once.</summary>
    public int? MaxConcurrentExports { get; init; }

    /// <summary>Bytes of export jobs the tenant may start per UTC day (counted when a job is accepted, corrected when it ends).</summary>
    public long? MaxDailyExportBytes { get; init; }

    /// <summary>The largest file one export job may write; a bigger job is refused, or fails when it grows past it.</summary>
    public long? ExportJobMaxBytes { get; init; }

    /// <summary>Events the tenant's log may hold (0: unlimited); ingest past it is refused as a whole.</summary>
    public long? MaxStoredEvents { get; init; }

    /// <summary>Bytes of leaves the tenant's log may hold (0: unlimited); ingest past it is refused as a whole.</summary>
    public long? MaxStoredBytes { get; init; }

    /// <summary>Refuse events whose type has no registered schema (null: false, the default).</summary>
    public bool? RequireRegisteredTypes { get; init; }
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
