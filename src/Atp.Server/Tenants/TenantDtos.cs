namespace Atp.Server.Tenants;

internal sealed record ResidencyDto(string? Mode, IReadOnlyList<string>? AllowedRegions);

internal sealed record CreateTenantRequest(string? Id, string? Name, string? Edition, string? HomeRegion, ResidencyDto? Residency);

internal sealed record UpdateTenantRequest(string? Status);

internal sealed record TenantResponse(string Id, string Name, string Edition, string HomeRegion, ResidencyDto Residency, string Status, DateTimeOffset CreatedAt, string Origin);

internal sealed record CreateApiKeyRequest(string? Name, IReadOnlyList<string>? Scopes);

internal sealed record ApiKeyResponse(string Id, string Key, string Name, IReadOnlyList<string> Scopes, string Tenant);
