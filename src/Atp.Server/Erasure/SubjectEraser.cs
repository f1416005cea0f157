using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Holds;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Events;
using Atp.Server.Gateway;
using Atp.Server.Holds;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atp.Server.Erasure;

/// <summary>What one erasure did: the answer to send, and either the erasure's result or why it did not happen.</summary>
internal sealed record ErasureOutcome(IResult Result, ErasureResponse? Erased, string? Failure);

/// <summary>
/// The one code path of an erasure, run at once by POST …/erasures or by the approval of an erasure request: the
/// legal-hold check, the tombstone appended with the key destroyed in its transaction, the scrub, the audit record.
/// </summary>
internal sealed class SubjectEraser(
    IngestionService ingestion,
    FieldSealer sealer,
    IDataKeyStore dataKeys,
    ILegalHoldStore holds,
    IEventQueryStore events,
    ILogStore log,
    PlatformAuditLog audit,
    TimeProvider clock)
{
    /// <summary>The subject's data key id (a keyed hash of the subject): the only name it is recorded under.</summary>
    public ValueTask<string> KeyIdOfAsync(string tenantId, string subject, CancellationToken cancellationToken) =>
        sealer.Ring.KeyIdOfAsync(tenantId, subject, cancellationToken);

    /// <summary>The problem to answer when an active legal hold may cover the subject, or the holds cannot be checked now; null when none does.</summary>
    public async Task<ProblemHttpResult?> HeldAsync(HttpContext context, string tenantId, string subject, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> held;
        string? heldUnchecked;
        try
        {
            (held, heldUnchecked) = await SubjectHolds.FindAsync(holds, events, log, tenantId, subject, cancellationToken).ConfigureAwait(false);
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
            audit.Report(PlatformEvents.Refusal(context, "erasure.held", tenantId, $"erasure refused: legal holds {string.Join(", ", held)} may cover the subject"));
            return HoldProblems.LegalHold(held);
        }

        return null;
    }

    /// <summary>Erases <paramref name="subject"/> now (for the approved request <paramref name="requestId"/>, if any).</summary>
    public async Task<ErasureOutcome> EraseAsync(HttpContext context, string tenantId, string subject, string reason, string? requestId, CancellationToken cancellationToken)
    {
        // Before the append: a hold placed after this check and before the tombstone commits does not stop this
        // erasure (docs/api.md, "Legal holds"); both are in the platform audit log with their times.
        if (await HeldAsync(context, tenantId, subject, cancellationToken).ConfigureAwait(false) is { } refused)
        {
            return Failed(refused);
        }

        var keyId = await KeyIdOfAsync(tenantId, subject, cancellationToken).ConfigureAwait(false);
        var keyExisted = await dataKeys.FindDataKeyAsync(tenantId, keyId, cancellationToken).ConfigureAwait(false) is not null;
        var tombstone = Tombstone(context, keyId, reason, keyExisted, clock.GetUtcNow());
        AppendOutcome outcome;
        try
        {
            outcome = await ingestion.AppendErasureAsync(tenantId, tombstone, subject, keyId, AtpClaims.SubmitterOf(context.User), cancellationToken).ConfigureAwait(false);
        }
        catch (LogQuarantinedException)
        {
            return Failed(Problem.LogQuarantined());
        }
        catch (StorageFullException)
        {
            return Failed(Problem.StorageFull("The log store's disk is full; nothing was erased. Retry later."));
        }
        catch (StoreUnavailableException)
        {
            return Failed(Problem.Unavailable("The log store could not record the erasure; nothing was erased. Retry."));
        }

        if (outcome is not Appended { Receipts: [var receipt] })
        {
            throw new InvalidOperationException($"An erasure's tombstone was not appended: {outcome.GetType().Name}.");
        }

        // After the commit, so a busy WAL never holds the erasure back; reported, and retried by the next erasure.
        var scrubbed = keyExisted && await dataKeys.ScrubDestroyedKeysAsync(cancellationToken).ConfigureAwait(false);
        var record = new Dictionary<string, string>
        {
            ["subjectKeyId"] = keyId,
            ["keyDestroyed"] = keyExisted ? "true" : "false",
            ["tombstoneIndex"] = receipt.Index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (requestId is not null)
        {
            record["requestId"] = requestId;
        }

        audit.Report(PlatformEvents.AdminAction(context, "subject.erased", tenantId, record));
        var erased = new ErasureResponse(keyId, keyExisted, scrubbed, new ReceiptDto(receipt.Id, receipt.Index, receipt.LeafHash.ToBase64()), requestId);
        return new ErasureOutcome(TypedResults.Json(erased, statusCode: StatusCodes.Status201Created), erased, null);
    }

    // The problem's type and detail say why (a hold's id, the store's state); neither names the subject.
    private static ErasureOutcome Failed(ProblemHttpResult problem) =>
        new(problem, null, $"{problem.ProblemDetails.Type?.Split('/')[^1]}: {problem.ProblemDetails.Detail}");

    // Names the subject only by its key id (a keyed hash); the requester's address and agent are left out, since the
    // tombstone itself is never sealed.
    private static EventDraft Tombstone(HttpContext context, string keyId, string reason, bool keyDestroyed, DateTimeOffset now)
    {
        var data = JsonSerializer.SerializeToElement(new ErasureRecord(keyId, reason, keyDestroyed), ErasureJson.Default.ErasureRecord);
        return new EventDraft(
            null,
            ErasureEndpoints.TombstoneType,
            now,
            PlatformEvents.ActorOf(context),
            "subject.erase",
            [new Party("data-subject", keyId, null)],
            EventOutcome.Success,
            new EventContext(null, null, context.TraceIdentifier),
            data);
    }
}
