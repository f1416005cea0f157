using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Gateway;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Tenants;

/// <summary>Tenants and their API keys.</summary>
internal static class TenantEndpoints
{
    public static IEndpointRouteBuilder MapTenantEndpoints(this IEndpointRouteBuilder app)
    {
        var tenants = app.MapGroup("/v1/tenants").WithTags("Tenants");

        tenants.MapPost("/", CreateTenantAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithSummary("Create a tenant (platform admin)");

        tenants.MapGet("/{tenant}", (HttpContext context, IOptions<AtpOptions> options) => TypedResults.Ok(ToResponse(TenantAccessFilter.Current(context), options.Value)))
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("Get a tenant (platform admin, tenant admin)");

        tenants.MapPatch("/{tenant}", UpdateTenantAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("Suspend or reactivate a tenant (platform admin)");

        tenants.MapPost("/{tenant}/api-keys", CreateApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("Create an API key (optional expiresAt); the key is shown once");

        tenants.MapGet("/{tenant}/api-keys", ListApiKeysAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("The tenant's API keys with their status; never the keys themselves");

        tenants.MapDelete("/{tenant}/api-keys/{keyId}", RevokeApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("Revoke an API key, effective at once");

        tenants.MapPost("/{tenant}/api-keys/{keyId}/rotate", RotateApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("Issue a successor key; the old one stays valid for the overlap (default 24 h), then expires");
        return app;
    }

    private static async Task<IResult> CreateTenantAsync(HttpContext context, ITenantStore store, IOptions<AtpOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateTenantRequest>(context, 64 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var errors = new List<string>();
        if (!TenantRules.IsValidId(request!.Id))
        {
            errors.Add("id: 2-63 lowercase letters, digits or '-', starting with a letter or digit");
        }

        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 200)
        {
            errors.Add("name: 1-200 characters");
        }

        var edition = request.Edition ?? Tenant.DefaultEdition;
        if (edition is not (Tenant.DefaultEdition or Tenant.EnterpriseEdition))
        {
            errors.Add("edition: default or enterprise");
        }

        var homeRegion = request.HomeRegion ?? options.Value.Region;
        if (!TenantRules.IsValidRegion(homeRegion))
        {
            errors.Add("homeRegion: a region name such as westeu");
        }

        var mode = request.Residency?.Mode ?? Residency.Strict;
        if (mode is not (Residency.Strict or Residency.Permitted))
        {
            errors.Add("residency.mode: strict or permitted");
        }

        var allowed = request.Residency?.AllowedRegions ?? [];
        if (allowed.Any(r => !TenantRules.IsValidRegion(r)) || allowed.Count > 32)
        {
            errors.Add("residency.allowedRegions: at most 32 region names");
        }

        if (errors.Count > 0)
        {
            return Problem.Validation("The tenant is not valid; nothing was stored.", errors);
        }

        var tenant = new Tenant(request.Id!, request.Name!.Trim(), edition, homeRegion, new Residency(mode, [.. allowed.Distinct(StringComparer.Ordinal)]), Tenant.Active, clock.GetUtcNow());
        if (!tenant.IsServedIn(options.Value.Region))
        {
            return Problem.Misdirected($"This cell serves region '{options.Value.Region}'; the tenant's residency policy keeps its data in '{homeRegion}'{(mode == Residency.Permitted && allowed.Count > 0 ? " and " + string.Join(", ", allowed) : "")}. Create it in such a cell.");
        }

        if (!await store.TryCreateTenantAsync(tenant, cancellationToken).ConfigureAwait(false))
        {
            return Problem.Conflict("tenant-exists", $"A tenant '{tenant.Id}' already exists.");
        }

        return TypedResults.Created($"/v1/tenants/{tenant.Id}", ToResponse(tenant, options.Value));
    }

    private static async Task<IResult> UpdateTenantAsync(HttpContext context, ITenantStore store, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<UpdateTenantRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (request!.Status is not (Tenant.Active or Tenant.Suspended))
        {
            return Problem.Validation("status: active or suspended");
        }

        var tenant = TenantAccessFilter.Current(context);
        await store.SetTenantStatusAsync(tenant.Id, request.Status, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(ToResponse(tenant with { Status = request.Status }, options.Value));
    }

    private static readonly TimeSpan MaxOverlap = TimeSpan.FromDays(30);

    private static async Task<IResult> CreateApiKeyAsync(HttpContext context, ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateApiKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var scopes = request!.Scopes ?? [];
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 200)
        {
            return Problem.Validation("name: 1-200 characters");
        }

        if (scopes.Count == 0 || scopes.Any(s => !Scopes.TenantScopes.Contains(s)))
        {
            return Problem.Validation($"scopes: one or more of {string.Join(", ", Scopes.TenantScopes)}");
        }

        if (request.ExpiresAt is { } expires && expires <= clock.GetUtcNow())
        {
            return Problem.Validation("expiresAt: must be in the future");
        }

        var tenant = TenantAccessFilter.Current(context);
        var (key, secret) = NewKey(tenant.Id, request.Name.Trim(), [.. scopes.Distinct(StringComparer.Ordinal)], request.ExpiresAt, clock);
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/api-keys/{key.Id}", new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, tenant.Id, key.ExpiresAt));
    }

    private static async Task<IResult> ListApiKeysAsync(HttpContext context, ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        var keys = await store.ListApiKeysAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ApiKeyListResponse(keys.Select(k => new ApiKeyInfo(k.Id, k.Name, k.Scopes, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.StatusAt(now))).ToArray()));
    }

    private static async Task<IResult> RevokeApiKeyAsync(HttpContext context, string keyId, ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        return await store.RevokeApiKeyAsync(tenant.Id, keyId, clock.GetUtcNow(), cancellationToken).ConfigureAwait(false)
            ? TypedResults.NoContent()
            : Problem.NotFound($"The tenant has no API key '{keyId}'.");
    }

    private static async Task<IResult> RotateApiKeyAsync(HttpContext context, string keyId, ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var request = new RotateApiKeyRequest(null, null);
        if (context.Request.ContentLength is > 0 || context.Request.ContentType is not null)
        {
            var (body, problem) = await JsonBody.ReadAsync<RotateApiKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            request = body!;
        }

        var overlap = TimeSpan.FromSeconds(request.OverlapSeconds ?? (long)TimeSpan.FromHours(24).TotalSeconds);
        if (overlap < TimeSpan.Zero || overlap > MaxOverlap)
        {
            return Problem.Validation($"overlapSeconds: 0 to {(long)MaxOverlap.TotalSeconds}");
        }

        var now = clock.GetUtcNow();
        if (request.ExpiresAt is { } expires && expires <= now + overlap)
        {
            return Problem.Validation("expiresAt: the new key must outlive the overlap");
        }

        var tenant = TenantAccessFilter.Current(context);
        var old = (await store.ListApiKeysAsync(tenant.Id, cancellationToken).ConfigureAwait(false)).FirstOrDefault(k => k.Id == keyId);
        if (old is null)
        {
            return Problem.NotFound($"The tenant has no API key '{keyId}'.");
        }

        if (old.StatusAt(now) != ApiKey.Active)
        {
            return Problem.Conflict("key-not-active", $"API key '{keyId}' is {old.StatusAt(now)}; only an active key can be rotated.");
        }

        var (key, secret) = NewKey(tenant.Id, old.Name, old.Scopes, request.ExpiresAt, clock);
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        var oldExpiry = old.ExpiresAt is { } current && current < now + overlap ? current : now + overlap;
        await store.ExpireApiKeyAsync(tenant.Id, old.Id, oldExpiry, cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/api-keys/{key.Id}", new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, tenant.Id, key.ExpiresAt, old.Id, oldExpiry));
    }

    private static (ApiKey Key, string Secret) NewKey(string tenantId, string name, IReadOnlyList<string> scopes, DateTimeOffset? expiresAt, TimeProvider clock)
    {
        var secret = ApiKeyFormat.Generate();
        var key = new ApiKey(ApiKeyFormat.NewId(), tenantId, name, scopes, ApiKeyFormat.Hash(secret), clock.GetUtcNow())
        {
            ExpiresAt = expiresAt,
        };
        return (key, secret);
    }

    private static TenantResponse ToResponse(Tenant t, AtpOptions options) =>
        new(t.Id, t.Name, t.Edition, t.HomeRegion, new ResidencyDto(t.Residency.Mode, t.Residency.AllowedRegions), t.Status, t.CreatedAt, options.TenantOrigin(t.Id));
}
