using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;

namespace Atp.Server.Tenants;

/// <summary>
/// Platform-admin API keys: created, listed, rotated and revoked like tenant keys, by platform admins only. The last
/// active platform key cannot be revoked, so a cell is never left without a way in.
/// </summary>
internal static class PlatformKeyEndpoints
{
    public static IEndpointRouteBuilder MapPlatformKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/v1/admin/keys").WithTags("Platform administration").RequireAuthorization(Scopes.PlatformAdmin);

        keys.MapPost("/", CreateAsync)
            .WithSummary("Create a platform-admin API key (optional expiresAt); the key is shown once")
            .WithName("createPlatformKey")
            .WithJsonBody<CreatePlatformKeyRequest>()
            .Produces<ApiKeyResponse>(StatusCodes.Status201Created);

        keys.MapGet("/", ListAsync)
            .WithSummary("The platform-admin API keys with their status; never the keys themselves")
            .WithName("listPlatformKeys")
            .Produces<ApiKeyListResponse>();

        keys.MapDelete("/{keyId}", RevokeAsync)
            .WithSummary("Revoke a platform-admin API key, effective at once; the last active one cannot be revoked")
            .WithName("revokePlatformKey")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);

        keys.MapPost("/{keyId}/rotate", (HttpContext context, string keyId, ITenantStore store, ISecretSealer sealer, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken) =>
                TenantEndpoints.RotateKeyAsync(context, tenantId: null, keyId, store, sealer, audit, clock, cancellationToken))
            .WithSummary("Replace a platform-admin key: a new key now, the old one expires after overlapSeconds (default 86400)")
            .WithName("rotatePlatformKey")
            .WithJsonBody<RotateApiKeyRequest>(optional: true)
            .Produces<ApiKeyResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ITenantStore store, ISecretSealer sealer, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreatePlatformKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (!DisplayNames.IsValid(request!.Name))
        {
            return Problem.Validation(DisplayNames.Rule);
        }

        if (request.ExpiresAt is { } expires && expires <= clock.GetUtcNow())
        {
            return Problem.Validation("expiresAt: must be in the future");
        }

        if (request.Owner is not null && !DisplayNames.IsValid(request.Owner))
        {
            return Problem.Validation(TenantEndpoints.OwnerRule);
        }

        var owner = await TenantEndpoints.OwnerOfNewKeyAsync(context, request.Owner, store, cancellationToken).ConfigureAwait(false);
        var (key, secret, _) = TenantEndpoints.NewKey(null, request.Name.Trim(), [Scopes.PlatformAdmin], request.ExpiresAt, signing: false, sealer, clock);
        key = key with { Owner = owner };
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(PlatformEvents.AdminAction(context, "platform-key.created", PlatformAuditLog.TenantId, new() { ["keyId"] = key.Id, ["owner"] = owner }), cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/v1/admin/keys/{key.Id}", new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, null, key.ExpiresAt, null) { Owner = owner });
    }

    private static async Task<IResult> ListAsync(ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var keys = await store.ListApiKeysAsync(null, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ApiKeyListResponse(keys.Select(k => TenantEndpoints.InfoOf(k, now)).ToArray()));
    }

    private static async Task<IResult> RevokeAsync(HttpContext context, string keyId, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var keys = await store.ListApiKeysAsync(null, cancellationToken).ConfigureAwait(false);
        if (keys.FirstOrDefault(k => k.Id == keyId) is { } key && key.StatusAt(now) == ApiKey.Active
            && !keys.Any(k => k.Id != keyId && k.StatusAt(now) == ApiKey.Active && k.Scopes.Contains(Scopes.PlatformAdmin)))
        {
            return Problem.Conflict("last-platform-key", $"'{keyId}' is the last active platform-admin key; create or rotate to a new one first.");
        }

        return await TenantEndpoints.RevokeKeyAsync(context, null, keyId, store, audit, clock, cancellationToken).ConfigureAwait(false);
    }
}
