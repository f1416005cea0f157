using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// The tenancy guard of every <c>/v1/tenants/{tenant}/…</c> route: a tenant key works only for its own tenant, and
/// a suspended tenant is refused. The resolved tenant is handed to the endpoint through <see cref="HttpContext.Items"/>.
/// </summary>
internal sealed class TenantAccessFilter(ITenantStore tenants, IOptions<AtpOptions> options, bool allowSuspendedForPlatformAdmin = false) : IEndpointFilter
{
    private const string ItemKey = "atp.tenant";

    public static Tenant Current(HttpContext context) => (Tenant)context.Items[ItemKey]!;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var tenantId = http.GetRouteValue("tenant") as string ?? string.Empty;
        var user = http.User;
        var platformAdmin = AtpClaims.IsPlatformAdmin(user);

        // Unknown and foreign tenants get the same answer, so a key cannot probe which tenants exist.
        if (!platformAdmin && !string.Equals(AtpClaims.TenantOf(user), tenantId, StringComparison.Ordinal))
        {
            return Problem.Forbidden("This API key is not valid for this tenant.");
        }

        var tenant = await tenants.GetTenantAsync(tenantId, http.RequestAborted).ConfigureAwait(false);
        if (tenant is null)
        {
            return platformAdmin ? Problem.NotFound($"No tenant '{tenantId}'.") : Problem.Forbidden("This API key is not valid for this tenant.");
        }

        // Residency guard: a cell outside the tenant's allowed regions serves nothing of it, to anyone.
        var region = options.Value.Region;
        if (!tenant.IsServedIn(region))
        {
            return Problem.Misdirected($"This cell serves region '{region}', which the tenant's residency policy does not allow; use a cell of region '{tenant.HomeRegion}'.");
        }

        if (!tenant.IsActive && !(platformAdmin && allowSuspendedForPlatformAdmin))
        {
            return Problem.TenantSuspended();
        }

        http.Items[ItemKey] = tenant;
        return await next(context).ConfigureAwait(false);
    }
}
