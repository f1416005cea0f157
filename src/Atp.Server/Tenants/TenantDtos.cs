namespace Atp.Server.Tenants;

internal sealed record ResidencyDto(string? Mode, IReadOnlyList<string>? AllowedRegions);

internal sealed record CreateTenantRequest(string? Id, string? Name, string? Edition, string? HomeRegion, ResidencyDto? Residency);

internal sealed record UpdateTenantRequest(string? Status);

internal sealed record TenantResponse(string Id, string Name, string Edition, string HomeRegion, ResidencyDto Residency, string Status, DateTimeOffset CreatedAt, string Origin);

internal sealed record CreateApiKeyRequest(string? Name, IReadOnlyList<string>? Scopes, DateTimeOffset? ExpiresAt);

internal sealed record RotateApiKeyRequest(long? OverlapSeconds, DateTimeOffset? ExpiresAt);

internal sealed record ApiKeyResponse(string Id, string Key, string Name, IReadOnlyList<string> Scopes, string Tenant, DateTimeOffset? ExpiresAt, string? Replaces = null, DateTimeOffset? ReplacedKeyExpiresAt = null);

internal sealed record ApiKeyInfo(string Id, string Name, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, string Status);

internal sealed record ApiKeyListResponse(IReadOnlyList<ApiKeyInfo> Items);
