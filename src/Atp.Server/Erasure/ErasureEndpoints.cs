using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Holds;
using Atp.Core.Ingestion;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Classification;
using Atp.Server.Events;
using Atp.Server.Gateway;
using Atp.Server.Holds;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Erasure;

/// <summary>
/// Erasure of a data subject by crypto-shredding (docs/classification.md, "Erasure"): the subject's data key is
/// destroyed in the same transaction that appends a tombstone to the tenant's log, so every token sealed under it
/// can never be opened again while every leaf, proof and checkpoint stays as it was.
/// </summary>
internal static class ErasureEndpoints
{
    /// <summary>The tombstone's event type in the tenant's log.</summary>
    public const string TombstoneType = "atp.erasure.v1";

    private const int MaxBodyBytes = 8 * 1024;
    private const int MaxSubjectLength = 256;
    private const int MaxReasonLength = 1024;

    public static IEndpointRouteBuilder MapErasureEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/tenants/{tenant}/erasures", EraseAsync)
            .WithTags("Erasure")
            .RequireTenantAccess()
            .RequireAuthorization(Scopes.TenantAdmin)
            .WithSummary("Erase a data subject: destroy the subject's data key and append a tombstone (tenant admin)")
            .WithDescription("The subject is the actor id whose sealed fields (actor name, IP, user agent) are to become unreadable. Its data key is destroyed in the same transaction that appends a tombstone event (type atp.erasure.v1: the subject's key id, never the subject, the reason and who asked) to the tenant's log; the leaves, proofs and checkpoints are unchanged and still verify. 409 erasure-unavailable: this cell does not seal personal fields (Atp:Classification:SealEnvelopeFields), so there is no key to destroy. Erasing a subject without a key still records the tombstone (keyDestroyed false). 409 legal-hold: an active legal hold may cover the subject (it names the subject as actor or target, or names no party and holds at least one event about the subject); the problem's holds member lists their ids and nothing is erased until they are released.")
            .WithName("eraseSubject")
            .WithJsonBody<ErasureRequest>()
            .Produces<ErasureResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static async Task<IResult> EraseAsync(
        HttpContext context,
        IngestionService ingestion,
        FieldSealer sealer,
        IDataKeyStore dataKeys,
        ILegalHoldStore holds,
        IEventQueryStore events,
        ILogStore log,
        IOptions<ClassificationOptions> classification,
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

        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReasonLength)
        {
            return Problem.Validation($"reason: required, 1 to {MaxReasonLength} characters (it is stored in the tenant's log: name the request, not the person); nothing was erased.");
        }

        // A tenant's classified data fields are sealed even where the cell leaves the envelope's fields in clear.
        if (!classification.Value.SealEnvelopeFields
            && (await classifications.PlanAsync(TenantAccessFilter.Current(context).Id, cancellationToken).ConfigureAwait(false)).DataPointers.Count == 0)
        {
            return Problem.Conflict(
                "erasure-unavailable",
                "This cell does not seal personal fields (Atp:Classification:SealEnvelopeFields is off) and the tenant's policy classifies no data field: they are stored as sent and no key can be destroyed; nothing was erased.");
        }

        var tenant = TenantAccessFilter.Current(context);

        // Before the append: a hold placed after this check and before the tombstone commits does not stop this
        // erasure (docs/api.md, "Legal holds"); both are in the platform audit log with their times.
        IReadOnlyList<string> held;
        string? heldUnchecked;
        try
        {
            (held, heldUnchecked) = await SubjectHolds.FindAsync(holds, events, log, tenant.Id, request.Subject, cancellationToken).ConfigureAwait(false);
        }
        catch (ProjectionRebuildingException)
        {
            context.Response.Headers.RetryAfter = "5";
            return Problem.ProjectionRebuilding("The read models are being rebuilt, so the tenant's legal holds cannot be checked against the subject's events; nothing was erased. Retry.");
        }

        if (heldUnchecked is not null)
        {
            context.Response.Headers.RetryAfter = "30";
            return Problem.Unavailable($"The tenant's legal holds cannot be checked against the subject's events now: {heldUnchecked}. Nothing was erased; retry when the projection caught up.");
        }

        if (held.Count > 0)
        {
            audit.Report(PlatformEvents.Refusal(context, "erasure.held", tenant.Id, $"erasure refused: legal holds {string.Join(", ", held)} may cover the subject"));
            return HoldProblems.LegalHold(held);
        }

        var keyId = await sealer.Ring.KeyIdOfAsync(tenant.Id, request.Subject, cancellationToken).ConfigureAwait(false);
        var keyExisted = await dataKeys.FindDataKeyAsync(tenant.Id, keyId, cancellationToken).ConfigureAwait(false) is not null;
        var tombstone = Tombstone(context, keyId, request.Reason, keyExisted, clock.GetUtcNow());
        AppendOutcome outcome;
        try
        {
            outcome = await ingestion.AppendErasureAsync(tenant.Id, tombstone, request.Subject, keyId, AtpClaims.SubmitterOf(context.User), cancellationToken).ConfigureAwait(false);
        }
        catch (LogQuarantinedException)
        {
            return Problem.LogQuarantined();
        }
        catch (StorageFullException)
        {
            return Problem.StorageFull("The log store's disk is full; nothing was erased. Retry later.");
        }
        catch (StoreUnavailableException)
        {
            return Problem.Unavailable("The log store could not record the erasure; nothing was erased. Retry.");
        }

        if (outcome is not Appended { Receipts: [var receipt] })
        {
            throw new InvalidOperationException($"An erasure's tombstone was not appended: {outcome.GetType().Name}.");
        }

        // After the commit, so a busy WAL never holds the erasure back; reported, and retried by the next erasure.
        var scrubbed = keyExisted && await dataKeys.ScrubDestroyedKeysAsync(cancellationToken).ConfigureAwait(false);
        audit.Report(PlatformEvents.AdminAction(context, "subject.erased", tenant.Id, new Dictionary<string, string>
        {
            ["subjectKeyId"] = keyId,
            ["keyDestroyed"] = keyExisted ? "true" : "false",
            ["tombstoneIndex"] = receipt.Index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }));
        return TypedResults.Json(
            new ErasureResponse(keyId, keyExisted, scrubbed, new ReceiptDto(receipt.Id, receipt.Index, receipt.LeafHash.ToBase64())),
            statusCode: StatusCodes.Status201Created);
    }

    // Names the subject only by its key id (a keyed hash); the requester's address and agent are left out, since the
    // tombstone itself is never sealed.
    private static EventDraft Tombstone(HttpContext context, string keyId, string reason, bool keyDestroyed, DateTimeOffset now)
    {
        var data = JsonSerializer.SerializeToElement(new ErasureRecord(keyId, reason, keyDestroyed), ErasureJson.Default.ErasureRecord);
        return new EventDraft(
            null,
            TombstoneType,
            now,
            PlatformEvents.ActorOf(context),
            "subject.erase",
            [new Party("data-subject", keyId, null)],
            EventOutcome.Success,
            new EventContext(null, null, context.TraceIdentifier),
            data);
    }
}
