namespace Atp.Server.Tenants;

internal sealed record ResidencyDto(string? Mode, IReadOnlyList<string>? AllowedRegions);

internal sealed record CreateTenantRequest(string? Id, string? Name, string? Edition, string? HomeRegion, ResidencyDto? Residency);

/// <summary>PATCH body: absent members stay as they are; an explicit null resets a setting to the edition's default.</summary>
internal sealed record UpdateTenantRequest(string? Status, System.Text.Json.JsonElement RequireSignedRequests, System.Text.Json.JsonElement Limits)
{
    /// <summary>Refuse events whose type has no registered schema: true, false, or null for the default (false).</summary>
    public System.Text.Json.JsonElement RequireRegisteredTypes { get; init; }
}

/// <summary>The tenant's effective settings (its overrides, else its edition's defaults).</summary>
internal sealed record TenantSettingsDto(bool RequireSignedRequests, int IngestPerSecond, int QueryPerSecond)
{
    public int IngestEventsPerSecond { get; init; }

    public int IngestBytesPerSecond { get; init; }

    public int ReadCostPerSecond { get; init; }

    public int MaxConcurrentExports { get; init; }

    public long MaxDailyExportBytes { get; init; }

    public long ExportJobMaxBytes { get; init; }

    /// <summary>Events the tenant's log may hold; 0 is unlimited.</summary>
    public long MaxStoredEvents { get; init; }

    /// <summary>Bytes of leaves the tenant's log may hold; 0 is unlimited.</summary>
    public long MaxStoredBytes { get; init; }

    public bool RequireRegisteredTypes { get; init; }
}

/// <summary>What the tenant's log stores, as committed: its tree size and the sum of its leaves' byte lengths.</summary>
internal sealed record StorageUsageDto(long StoredEvents, long StoredBytes);

internal sealed record TenantResponse(string Id, string Name, string Edition, string HomeRegion, ResidencyDto Residency, string Status, DateTimeOffset CreatedAt, string Origin, TenantSettingsDto Settings)
{
    /// <summary>The storage the quotas (settings.maxStoredEvents, settings.maxStoredBytes) are checked against.</summary>
    public StorageUsageDto? Usage { get; init; }
}

internal sealed record CreateApiKeyRequest(string? Name, IReadOnlyList<string>? Scopes, DateTimeOffset? ExpiresAt, bool? Signing)
{
    /// <summary>The person the key belongs to (two-person rule); absent: the creating credential's person.</summary>
    public string? Owner { get; init; }
}

internal sealed record RotateApiKeyRequest(long? OverlapSeconds, DateTimeOffset? ExpiresAt);

/// <summary>A new key: <see cref="Key"/> and <see cref="SigningSecret"/> are shown only here, once.</summary>
internal sealed record ApiKeyResponse(string Id, string Key, string Name, IReadOnlyList<string> Scopes, string? Tenant, DateTimeOffset? ExpiresAt, string? SigningSecret, string? Replaces = null, DateTimeOffset? ReplacedKeyExpiresAt = null)
{
    /// <summary>The person the key belongs to, for the two-person rule of policy changes.</summary>
    public string? Owner { get; init; }
}

internal sealed record ApiKeyInfo(string Id, string Name, IReadOnlyList<string> Scopes, bool Signing, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, string Status)
{
    /// <summary>The person the key belongs to; a key from before owners existed is its own person (<c>key:</c> and its id).</summary>
    public string? Owner { get; init; }
}

internal sealed record ApiKeyListResponse(IReadOnlyList<ApiKeyInfo> Items);

internal sealed record CreatePlatformKeyRequest(string? Name, DateTimeOffset? ExpiresAt)
{
    /// <summary>The person the key belongs to (two-person rule); absent: the creating credential's person.</summary>
    public string? Owner { get; init; }
}
