using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Audit;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// The tenancy guard of every <c>/v1/tenants/{tenant}/…</c> route: a tenant key works only for its own tenant, and
/// a suspended tenant is refused. The resolved tenant is handed to the endpoint through <see cref="HttpContext.Items"/>.
/// </summary>
internal sealed class TenantAccessFilter(
    ITenantStore tenants,
    IOptions<AtpOptions> options,
    TenantRateLimiter rateLimiter,
    PlatformAuditLog audit,
    bool allowSuspendedForPlatformAdmin = false) : IEndpointFilter
{
    private const string ItemKey = "atp.tenant";

    public static Tenant Current(HttpContext context) => (Tenant)context.Items[ItemKey]!;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var tenantId = http.GetRouteValue("tenant") as string ?? string.Empty;
        var user = http.User;
        var platformAdmin = AtpClaims.IsPlatformAdmin(user);

        // Unknown and foreign tenants get the same answer, so a key cannot probe which tenants exist. A reserved tenant
        // (the platform audit log) belongs to no customer: a credential naming it as its tenant (an OIDC tenant claim
        // says whatever the issuer put there) gets nothing without platform:admin.
        if (!platformAdmin && (tenantId == PlatformAuditLog.TenantId || !string.Equals(AtpClaims.TenantOf(user), tenantId, StringComparison.Ordinal)))
        {
            return CrossTenant(http, tenantId);
        }

        // Only ATP itself appends to the platform audit log; through the API it can only be read.
        if (tenantId == PlatformAuditLog.TenantId && !(HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)))
        {
            audit.Report(PlatformEvents.Refusal(http, PlatformEvents.CrossTenant, null, "write to the platform audit log through the API"));
            return Problem.Forbidden("The platform audit log is written only by ATP itself.");
        }

        var tenant = await tenants.GetTenantAsync(tenantId, http.RequestAborted).ConfigureAwait(false);
        if (tenant is null)
        {
            return platformAdmin ? Problem.NotFound($"No tenant '{tenantId}'.") : CrossTenant(http, tenantId);
        }

        // Residency guard: a cell outside the tenant's allowed regions serves nothing of it, to anyone. The platform
        // audit log holds no customer data and belongs to whichever cell holds its store.
        var region = options.Value.Region;
        if (!tenant.IsServedIn(region) && tenant.Id != PlatformAuditLog.TenantId)
        {
            audit.Report(PlatformEvents.Refusal(http, PlatformEvents.ResidencyRefused, tenant.Id, $"cell region {region} is outside the tenant's residency policy"));
            return Problem.Misdirected($"This cell serves region '{region}', which the tenant's residency policy does not allow; use a cell of region '{tenant.HomeRegion}'.");
        }

        // Tenant credentials of a tenant that requires signatures must have signed; people (OIDC) and platform
        // admins are governed by their own credentials.
        if (tenant.RequiresSignedRequests && !platformAdmin && AtpClaims.IsApiKey(user) && !AtpClaims.IsSigned(user))
        {
            audit.Report(PlatformEvents.Refusal(http, PlatformEvents.SignatureRequired, tenant.Id, "bearer API key without a signature"));
            return Problem.SignatureRequired();
        }

        if (!tenant.IsActive && !(platformAdmin && allowSuspendedForPlatformAdmin))
        {
            return Problem.TenantSuspended();
        }

        if (!platformAdmin)
        {
            var kind = HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method) ? TenantRateLimiter.Query : TenantRateLimiter.Ingest;
            if (rateLimiter.TryAcquire(tenant, kind) is { } refusal)
            {
                refusal.WriteHeaders(http.Response);
                audit.ReportRateLimited(http, tenant.Id, kind);
                return Problem.RateLimited($"The tenant's {kind} limit of {refusal.Quota} requests per second is used up; retry after {refusal.RetryAfterSeconds} s.");
            }
        }

        http.Items[ItemKey] = tenant;
        return await next(context).ConfigureAwait(false);
    }

    // Unknown and foreign tenants get the same answer; the attempt is recorded with the tenant it named.
    private Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult CrossTenant(HttpContext http, string tenantId)
    {
        audit.Report(PlatformEvents.Refusal(http, PlatformEvents.CrossTenant, null, $"credential of tenant '{AtpClaims.TenantOf(http.User) ?? "(none)"}' used for tenant '{tenantId}'"));
        return Problem.Forbidden("This API key is not valid for this tenant.");
    }
}
