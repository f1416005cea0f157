using Atp.Core.Classification;
using Atp.Core.Keys;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;

namespace Atp.Server.Retention;

/// <summary>
/// Retention (docs/operations.md, "Retention"): a tenant admin runs one pass now instead of waiting for the background
/// service; the pass is the same, and so are its purge records.
/// </summary>
internal static class RetentionEndpoints
{
    public static IEndpointRouteBuilder MapRetentionEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/tenants/{tenant}/retention/run", RunAsync)
            .WithTags("Retention")
            .RequireTenantAccess()
            .RequireAuthorization(Scopes.TenantAdmin)
            .WithSummary("Run one retention pass now (tenant admin): purge the content of expired entries no legal hold covers")
            .WithDescription("Entries older (by their receive time) than their type's retention in the active policy lose their content; their leaf hashes and tree nodes stay, so every checkpoint and proof still verifies. Each batch of at most Atp:Retention:EntriesPerRecord entries is purged in the transaction that appends its purge record (type atp.retention.purge.v1, action log.purge) to the tenant's log. Answers the purge records appended (none when nothing expired). 409 retention-not-configured: the active policy has no retention. 409 read-only-replica: the source cell purges.")
            .WithName("runRetention")
            .Produces<RetentionRunResponse>()
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static async Task<IResult> RunAsync(HttpContext context, RetentionPass pass, IDataKeyStore store, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        if (tenant.IsReplica)
        {
            return Problem.ReadOnlyReplica();
        }

        var actor = PlatformEvents.ActorOf(context);
        RetentionOutcome? outcome;
        try
        {
            outcome = await pass.RunAsync(tenant.Id, actor, AtpClaims.SubmitterOf(context.User), cancellationToken).ConfigureAwait(false);
        }
        catch (LogQuarantinedException)
        {
            return Problem.LogQuarantined();
        }
        catch (StorageFullException)
        {
            return Problem.StorageFull("The log store's disk is full; nothing more was purged. Retry later.");
        }
        catch (StoreUnavailableException)
        {
            return Problem.Unavailable("The log store could not record a purge; the purges already answered by earlier records stand, nothing else was purged. Retry.");
        }

        if (outcome is null)
        {
            return Problem.Conflict("retention-not-configured", "The tenant's active policy sets no retention (policy member retention), so nothing expires; nothing was purged.");
        }

        var scrubbed = false;
        if (outcome.Purged > 0)
        {
            // After the commits, as an erasure does: the store's WAL still holds the frames that wrote the old leaves.
            scrubbed = await store.ScrubDestroyedKeysAsync(cancellationToken).ConfigureAwait(false);
            audit.Report(RetentionService.Purged(actor, PlatformEvents.ContextOf(context), tenant.Id, outcome));
        }

        return TypedResults.Ok(RetentionRunResponse.Of(outcome, scrubbed));
    }
}
