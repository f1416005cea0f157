using System.Globalization;
using Atp.Core.Classification;
using Atp.Core.Erasure;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Classification;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Policy;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atp.Server.Erasure;

/// <summary>
/// Erasure of a data subject by crypto-shredding (docs/classification.md, "Erasure"): the subject's data key is
/// destroyed in the same transaction that appends a tombstone to the tenant's log, so every token sealed under it
/// can never be opened again while every leaf, proof and checkpoint stays as it was. When the tenant's policy has
/// requireErasureApproval, an erasure is first a request that a second, different person approves.
/// </summary>
internal static class ErasureEndpoints
{
    /// <summary>The tombstone's event type in the tenant's log.</summary>
    public const string TombstoneType = "atp.erasure.v1";

    private const int MaxBodyBytes = 8 * 1024;
    private const int MaxSubjectLength = ErasureApprovalRequest.MaxSubjectLength;
    private const int MaxReasonLength = 1024;

    // Requests listed by one GET, newest first: every pending one fits (at most 1,000 per tenant).
    private const int ListLimit = 1_000;

    public static IEndpointRouteBuilder MapErasureEndpoints(this IEndpointRouteBuilder app)
    {
        var erasures = app.MapGroup("/v1/tenants/{tenant}/erasures").WithTags("Erasure").RequireTenantAccess().RequireAuthorization(Scopes.TenantAdmin);

        erasures.MapPost("/", EraseAsync)
            .WithSummary("Erase a data subject: destroy the subject's data key and append a tombstone, or, when the tenant's policy requires approval, request that (tenant admin)")
            .WithDescription("The subject is the actor id whose sealed fields (actor name, IP, user agent) are to become unreadable. Its data key is destroyed in the same transaction that appends a tombstone event (type atp.erasure.v1: the subject's key id, never the subject, the reason and who asked) to the tenant's log; the leaves, proofs and checkpoints are unchanged and still verify. When the tenant's active policy has requireErasureApproval true, nothing is erased yet: the answer is 202 with a pending erasure request (never the subject, only its key id) that a second, different person approves (POST …/erasures/{id}/approve) before it expires (Atp:Policy:ProposalLifetime). 409 erasure-unavailable: this cell does not seal personal fields (Atp:Classification:SealEnvelopeFields), so there is no key to destroy. Erasing a subject without a key still records the tombstone (keyDestroyed false). 409 legal-hold: an active legal hold may cover the subject (it names the subject as actor or target, or names no party and holds at least one event about the subject); the problem's holds member lists their ids and nothing is erased until they are released. 409 erasure-request-limit: the tenant has as many pending requests as Atp:Erasure:MaxPendingRequestsPerTenant allows (at most 1,000).")
            .WithName("eraseSubject")
            .WithJsonBody<ErasureRequest>()
            .Produces<ErasureResponse>(StatusCodes.Status201Created)
            .Produces<ErasureRequestDto>(StatusCodes.Status202Accepted)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);

        erasures.MapGet("/", ListAsync)
            .WithSummary("The tenant's erasure requests, newest first, at most 1,000; with state, only those in it (tenant admin, platform admin)")
            .WithDescription("A request is shown by its subject's key id, never the subject. A pending request past its expiry is shown, and recorded, as expired. 400 validation: state is not one of pending, approved, rejected, expired, failed.")
            .WithName("listErasureRequests")
            .WithParameter("state", "Only requests in this state: pending, approved, rejected, expired or failed.", Microsoft.OpenApi.JsonSchemaType.String, example: "pending")
            .Produces<ErasureRequestListResponse>();

        erasures.MapGet("/{id}", GetAsync)
            .WithSummary("One erasure request of the tenant (tenant admin, platform admin)")
            .WithDescription("404 not-found: the tenant has no erasure request of this id (another tenant's request is not found either).")
            .WithName("getErasureRequest")
            .Produces<ErasureRequestDto>()
            .ProducesProblems(StatusCodes.Status404NotFound);

        erasures.MapPost("/{id}/approve", ApproveAsync)
            .WithSummary("Approve a pending erasure request: the subject is erased at once (tenant admin, platform admin; not its requester)")
            .WithDescription("The request is marked approved (its stored subject overwritten with null) before the erasure runs, so two approvals at once erase once and no request stays pending after its tombstone committed. The erasure is the same as an immediate one: the legal-hold check again, the tombstone with the key destroyed, the scrub; 201 with its result and requestId. If it does not happen (409 legal-hold, 503), the request is closed as failed with the reason: request the erasure again. 403 self-approval: the approver is the requester's person (the same key, another key of the same owner, the same OIDC subject), unless Atp:Policy:TwoPersonApproval is false. 409 erasure-request-not-pending: the request was approved, rejected, failed or expired.")
            .WithName("approveErasureRequest")
            .Produces<ErasureResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);

        erasures.MapPost("/{id}/reject", RejectAsync)
            .WithSummary("Reject a pending erasure request (tenant admin, platform admin; its requester may withdraw it)")
            .WithDescription("reason: 1-1,024 characters. The stored subject is overwritten with null. 409 erasure-request-not-pending: the request was approved, rejected, failed or expired.")
            .WithName("rejectErasureRequest")
            .WithJsonBody<RejectErasureRequest>()
            .Produces<ErasureRequestDto>()
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> EraseAsync(
        HttpContext context,
        SubjectEraser eraser,
        IErasureRequestStore requests,
        ITenantStore store,
        IOptions<ClassificationOptions> classification,
        IOptions<PolicyOptions> policy,
        IOptions<ErasureOptions> options,
        TenantClassifications classifications,
        PlatformAuditLog audit,
        TimeProvider clock,
        CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<ErasureRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (string.IsNullOrWhiteSpace(request!.Subject) || request.Subject.Length > MaxSubjectLength)
        {
            return Problem.Validation($"subject: required, the actor id of the data subject, 1 to {MaxSubjectLength} characters; nothing was erased.");
        }

        if (ReasonProblem(request.Reason, "nothing was erased") is { } invalid)
        {
            return invalid;
        }

        // A tenant's classified data fields are sealed even where the cell leaves the envelope's fields in clear.
        var tenant = TenantAccessFilter.Current(context);
        if (!classification.Value.SealEnvelopeFields
            && (await classifications.PlanAsync(tenant.Id, cancellationToken).ConfigureAwait(false)).DataPointers.Count == 0)
        {
            return Problem.Conflict(
                "erasure-unavailable",
                "This cell does not seal personal fields (Atp:Classification:SealEnvelopeFields is off) and the tenant's policy classifies no data field: they are stored as sent and no key can be destroyed; nothing was erased.");
        }

        // Read from the store, not a cache: an approved policy change applies to the very next erasure.
        if (await store.ListPolicyVersionsAsync(tenant.Id, 1, cancellationToken).ConfigureAwait(false) is not [{ Document.RequireErasureApproval: true }])
        {
            return (await eraser.EraseAsync(context, tenant.Id, request.Subject, request.Reason!, null, cancellationToken).ConfigureAwait(false)).Result;
        }

        // A subject a hold covers now is refused now, rather than left pending for an approval that would fail.
        if (await eraser.HeldAsync(context, tenant.Id, request.Subject, cancellationToken).ConfigureAwait(false) is { } held)
        {
            return held;
        }

        var now = clock.GetUtcNow();
        var requester = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        var keyId = await eraser.KeyIdOfAsync(tenant.Id, request.Subject, cancellationToken).ConfigureAwait(false);
        var pending = new ErasureApprovalRequest(ResourceIds.New("era_"), tenant.Id, request.Subject, keyId, request.Reason!, requester, now, now + policy.Value.ProposalLifetime);
        var limit = options.Value.MaxPendingRequestsPerTenant;
        if (!await requests.CreateErasureRequestAsync(pending, limit, cancellationToken).ConfigureAwait(false))
        {
            return Problem.Create(409, "erasure-request-limit", "The tenant has as many pending erasure requests as allowed", $"The tenant has {limit} pending erasure requests, the most Atp:Erasure:MaxPendingRequestsPerTenant allows. Approve or reject pending requests first; nothing was stored.");
        }

        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "erasure.requested", tenant.Id, new()
            {
                ["requestId"] = pending.Id,
                ["subjectKeyId"] = keyId,
                ["requestedBy"] = requester,
                ["expiresAt"] = pending.ExpiresAt.ToString("O", CultureInfo.InvariantCulture),
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted($"/v1/tenants/{tenant.Id}/erasures/{pending.Id}", ErasureRequestDto.Of(pending, now));
    }

    private static async Task<IResult> ListAsync(
        HttpContext context, string? state, IErasureRequestStore requests, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (state is not null && !ErasureApprovalRequest.States.Contains(state, StringComparer.Ordinal))
        {
            return Problem.Validation($"state: one of {string.Join(", ", ErasureApprovalRequest.States)}.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();

        // Pending requests past their expiry are recorded as expired first, so the listing by state is the state as of now.
        foreach (var stale in (await requests.ListErasureRequestsAsync(tenant.Id, ErasureApprovalRequest.Pending, ListLimit, cancellationToken).ConfigureAwait(false))
            .Where(r => r.StateAt(now) == ErasureApprovalRequest.Expired))
        {
            await ExpireAsync(context, requests, audit, stale, now, cancellationToken).ConfigureAwait(false);
        }

        var list = await requests.ListErasureRequestsAsync(tenant.Id, state, ListLimit, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ErasureRequestListResponse([.. list.Select(r => ErasureRequestDto.Of(r, now))]));
    }

    private static async Task<IResult> GetAsync(
        HttpContext context, string id, IErasureRequestStore requests, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        await PendingAsync(context, requests, audit, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        return await requests.GetErasureRequestAsync(tenant.Id, id, cancellationToken).ConfigureAwait(false) is { } request
            ? TypedResults.Ok(ErasureRequestDto.Of(request, now))
            : NotFound(id);
    }

    private static async Task<IResult> ApproveAsync(
        HttpContext context,
        string id,
        SubjectEraser eraser,
        IErasureRequestStore requests,
        ITenantStore store,
        PlatformAuditLog audit,
        IOptions<PolicyOptions> options,
        TimeProvider clock,
        CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        if (await PendingAsync(context, requests, audit, tenant.Id, id, now, cancellationToken).ConfigureAwait(false) is not { Subject: { } subject } request)
        {
            return await ClosedProblemAsync(requests, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        var approver = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        if (options.Value.TwoPersonApproval && string.Equals(approver, request.RequestedBy, StringComparison.Ordinal))
        {
            audit.Report(PlatformEvents.Refusal(context, "erasure.self-approval", tenant.Id, $"approval of erasure request {request.Id} (subject key {request.SubjectKeyId}) by its requester"));
            return Problem.Create(403, "self-approval", "An erasure needs a second person", "The requester cannot approve their own erasure request, with this or another key of theirs or the same OIDC subject: a different person must approve it.");
        }

        // Approved before the erasure runs: of two approvals at once only one gets past this, and no request is still
        // pending once its tombstone committed. The subject is read above; the store no longer holds it.
        if (!await requests.CloseErasureRequestAsync(tenant.Id, request.Id, ErasureApprovalRequest.Approved, approver, null, now, cancellationToken).ConfigureAwait(false))
        {
            return await ClosedProblemAsync(requests, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "erasure.approved", tenant.Id, new()
            {
                ["requestId"] = request.Id,
                ["subjectKeyId"] = request.SubjectKeyId,
                ["requestedBy"] = request.RequestedBy,
                ["approvedBy"] = approver,
            }),
            cancellationToken).ConfigureAwait(false);

        ErasureOutcome outcome;
        try
        {
            outcome = await eraser.EraseAsync(context, tenant.Id, subject, request.Reason, request.Id, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Not known to have erased: closed as failed (the subject is gone from the store), so it is requested again.
            await requests.RecordErasureOutcomeAsync(tenant.Id, request.Id, null, "the erasure stopped with an unexpected error", CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        await requests.RecordErasureOutcomeAsync(tenant.Id, request.Id, outcome.Erased?.Tombstone.Index, outcome.Failure, CancellationToken.None).ConfigureAwait(false);
        if (outcome.Failure is { } failure)
        {
            await audit.RecordAsync(
                PlatformEvents.AdminAction(context, "erasure.failed", tenant.Id, new() { ["requestId"] = request.Id, ["subjectKeyId"] = request.SubjectKeyId, ["failure"] = failure }),
                cancellationToken).ConfigureAwait(false);
        }

        return outcome.Result;
    }

    private static async Task<IResult> RejectAsync(
        HttpContext context, string id, IErasureRequestStore requests, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadAsync<RejectErasureRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (ReasonProblem(body!.Reason, "the request is unchanged") is { } invalid)
        {
            return invalid;
        }

        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        if (await PendingAsync(context, requests, audit, tenant.Id, id, now, cancellationToken).ConfigureAwait(false) is not { } request)
        {
            return await ClosedProblemAsync(requests, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        var rejecter = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        var reason = body.Reason!.Trim();
        if (!await requests.CloseErasureRequestAsync(tenant.Id, request.Id, ErasureApprovalRequest.Rejected, rejecter, reason, now, cancellationToken).ConfigureAwait(false))
        {
            return await ClosedProblemAsync(requests, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "erasure.rejected", tenant.Id, new()
            {
                ["requestId"] = request.Id,
                ["subjectKeyId"] = request.SubjectKeyId,
                ["requestedBy"] = request.RequestedBy,
                ["rejectedBy"] = rejecter,
                ["reason"] = reason,
            }),
            cancellationToken).ConfigureAwait(false);
        var rejected = request with { Subject = null, State = ErasureApprovalRequest.Rejected, ClosedBy = rejecter, ClosedAt = now, CloseReason = reason };
        return TypedResults.Ok(ErasureRequestDto.Of(rejected, now));
    }

    private static ProblemHttpResult? ReasonProblem(string? reason, string unchanged) =>
        string.IsNullOrWhiteSpace(reason) || reason.Length > MaxReasonLength
            ? Problem.Validation($"reason: required, 1 to {MaxReasonLength} characters (it is stored in the tenant's log: name the request, not the person); {unchanged}.")
            : null;

    // The request when it is pending and not past its expiry; an expired one is recorded as expired on the way.
    private static async Task<ErasureApprovalRequest?> PendingAsync(
        HttpContext context, IErasureRequestStore requests, PlatformAuditLog audit, string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var request = await requests.GetErasureRequestAsync(tenantId, id, cancellationToken).ConfigureAwait(false);
        if (request is { State: ErasureApprovalRequest.Pending } && request.StateAt(now) == ErasureApprovalRequest.Expired)
        {
            await ExpireAsync(context, requests, audit, request, now, cancellationToken).ConfigureAwait(false);
            return null;
        }

        return request is { State: ErasureApprovalRequest.Pending } ? request : null;
    }

    private static async Task ExpireAsync(
        HttpContext context, IErasureRequestStore requests, PlatformAuditLog audit, ErasureApprovalRequest request, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await requests.CloseErasureRequestAsync(request.TenantId, request.Id, ErasureApprovalRequest.Expired, null, null, now, cancellationToken).ConfigureAwait(false))
        {
            await audit.RecordAsync(
                PlatformEvents.AdminAction(context, "erasure.expired", request.TenantId, new()
                {
                    ["requestId"] = request.Id,
                    ["subjectKeyId"] = request.SubjectKeyId,
                    ["expiresAt"] = request.ExpiresAt.ToString("O", CultureInfo.InvariantCulture),
                }),
                cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<IResult> ClosedProblemAsync(IErasureRequestStore requests, string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await requests.GetErasureRequestAsync(tenantId, id, cancellationToken).ConfigureAwait(false) is { } request
            ? Problem.Conflict("erasure-request-not-pending", $"Erasure request {request.Id} is {request.StateAt(now)}; only a pending request can be approved or rejected.")
            : NotFound(id);

    private static ProblemHttpResult NotFound(string id) => Problem.NotFound($"The tenant has no erasure request '{id}'.");
}
