using System.Security.Cryptography;
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
            .WithSummary("Create an API key; the key is shown once");
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

        var tenant = TenantAccessFilter.Current(context);
        var secret = ApiKeyFormat.Generate();
        var key = new ApiKey("key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), tenant.Id, request.Name.Trim(), [.. scopes.Distinct(StringComparer.Ordinal)], ApiKeyFormat.Hash(secret), clock.GetUtcNow());
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/api-keys/{key.Id}", new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, tenant.Id));
    }

    private static TenantResponse ToResponse(Tenant t, AtpOptions options) =>
        new(t.Id, t.Name, t.Edition, t.HomeRegion, new ResidencyDto(t.Residency.Mode, t.Residency.AllowedRegions), t.Status, t.CreatedAt, options.TenantOrigin(t.Id));
}
