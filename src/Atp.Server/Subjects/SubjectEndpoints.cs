using System.Globalization;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Events;
using Atp.Server.Gateway;
using Atp.Server.Integrity;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Atp.Server.Query;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atp.Server.Subjects;

/// <summary>
/// Data subject access and portability (GDPR art. 15 and 20): every event about one subject, as actor or as any
/// target, each with its inclusion proof against one checkpoint that the first page pins, so a subject's whole answer
/// verifies offline against a single signed note.
/// </summary>
internal static class SubjectEndpoints
{
    public const int MaxLimit = SearchRequest.MaxLimit;
    private const int DefaultLimit = 100;
    private const int MaxCursorLength = 200;
    private const string IntegrityFailureType = "https://atp.dev/problems/integrity-failure";

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal) { "limit", "cursor" };

    private static readonly string[] CursorErrors = ["cursor: not a cursor of this subject's events (cursors are bound to the tenant and the subject)"];

    public static IEndpointRouteBuilder MapSubjectEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/tenants/{tenant}/subjects/{subject}/events", ListAsync)
            .WithTags("Subjects")
            .RequireTenantAccess()
            .RequireAuthorization(Scopes.EventsRead)
            .WithReadCost(ReadCost.SubjectEvents)
            .WithSummary("Every event about a data subject (its id as the actor's or any target's), each once, oldest first, each with its inclusion proof against the one checkpoint the first page names; callers holding pii:read see classified fields in clear, with the committed tokens in each item's sealed")
            .WithDescription("For data subject access and portability requests (GDPR art. 15 and 20). The first page pins the latest signed checkpoint and the snapshot (the log prefix both sealed and searchable then); every later page carries both in its cursor, so all items of all pages verify against that one checkpoint. Events at or above the snapshot (appended, sealed or projected after the first page) are left to a later request; none is listed without its proof. Before the tenant's first checkpoint the page is empty with proofPending and Retry-After. An entry the read models list but whose content the log no longer holds (purged by retention) is named in unavailable, not in items. After an erasure of the subject its events are still listed, with its sealed fields as tokens for every caller.")
            .WithName("listSubjectEvents")
            .WithParameter("limit", $"Events per page, 1 to {MaxLimit} (default {DefaultLimit}); a page also stops before the response size limit.", Microsoft.OpenApi.JsonSchemaType.Integer, "int32", "100", minimum: 1, maximum: MaxLimit)
            .WithParameter("cursor", "The nextCursor of the previous page of the same subject.", example: "2.AQEAAAAAAAAAAgjfS6ZF8V0AAAAAAAAAAAH_u7HV5B0OUSUDvt1uKx5QuuXY6znJVvxD1IMswY-KAQ")
            .Produces<SubjectEventsResponse>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static async Task<IResult> ListAsync(
        HttpContext context,
        string subject,
        IEventQueryStore search,
        ILogStore store,
        QueryCursor cursors,
        StoredLeafCheck leafCheck,
        Classification.ClassifiedReads classified,
        IOptions<AtpOptions> options,
        CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);

        // Routing leaves %2F encoded in a segment: a subject such as "org/u-17" is sent as org%2Fu-17.
        subject = subject.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        var (limit, cursorText, errors) = Parse(subject, context.Request.Query);
        if (errors.Count > 0)
        {
            return Problem.Validation("The subject request is not valid.", errors);
        }

        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        if (status is { Rebuilding: true })
        {
            return Rebuilding(context);
        }

        var projected = status?.ProjectedSize ?? 0;
        StoredCheckpoint? checkpoint;
        SubjectCursor.State? resumed = null;
        if (cursorText is not null)
        {
            if (!SubjectCursor.TryDecode(cursors, tenant.Id, subject, cursorText, out var state)
                || await store.GetCheckpointAtOrAfterAsync(tenant.Id, state.CheckpointSize, cancellationToken).ConfigureAwait(false) is not { } pinned
                || pinned.Size != state.CheckpointSize)
            {
                return Problem.Validation("The subject request is not valid.", CursorErrors);
            }

            // Read models rebuilt since the first page hold less until they catch up; a page from them would miss events.
            if (state.SnapshotSize > projected)
            {
                return Rebuilding(context);
            }

            checkpoint = pinned;
            resumed = state;
        }
        else
        {
            checkpoint = await store.GetLatestCheckpointAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
            if (checkpoint is null)
            {
                // Nothing is listed without its proof: before the first checkpoint, say when to ask again.
                if (projected > 0)
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.Integrity.CheckpointInterval.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                    return TypedResults.Ok(new SubjectEventsResponse(subject, [], null, null, 0) { ProofPending = true });
                }

                return TypedResults.Ok(new SubjectEventsResponse(subject, [], null, null, 0));
            }
        }

        // The first page pins the snapshot: entries both sealed by the checkpoint and searchable now.
        var snapshot = resumed?.SnapshotSize ?? Math.Min(projected, checkpoint.Size);
        SubjectPage page;
        try
        {
            page = await search.ListSubjectEventsAsync(new SubjectQuery(tenant.Id, subject) { Limit = limit, SnapshotSize = snapshot, After = resumed?.After }, cancellationToken).ConfigureAwait(false);
        }
        catch (ProjectionRebuildingException)
        {
            return Rebuilding(context);
        }

        var maxResponseBytes = options.Value.Query.MaxResponseBytes;
        var items = new List<SearchItem>(page.Hits.Count);
        var unavailable = new List<ulong>();
        var bytes = 0L;
        var hasMore = page.HasMore;
        QueryPosition? last = null;
        var proofs = new ProofBuilder(store.NodeReader(tenant.Id));
        var reader = classified.ReaderFor(context.User, tenant.Id);
        foreach (var hit in page.Hits)
        {
            if (hit.Entry is not { } entry)
            {
                unavailable.Add(hit.Position.Index);
                last = hit.Position;
                continue;
            }

            bytes += entry.Leaf.Length;
            if (bytes > maxResponseBytes && last is not null)
            {
                hasMore = true;
                break;
            }

            last = hit.Position;
            items.Add(await ItemAsync(tenant.Id, entry, hit.Position, checkpoint, proofs, leafCheck, reader, cancellationToken).ConfigureAwait(false));
        }

        var next = hasMore && last is { } end
            ? SubjectCursor.Encode(cursors, tenant.Id, subject, new SubjectCursor.State(checkpoint.Size, snapshot, end))
            : null;
        return TypedResults.Ok(new SubjectEventsResponse(subject, items, next, checkpoint.Note, snapshot) { Unavailable = unavailable.Count > 0 ? unavailable : null });
    }

    // As a verified search item: the event (in clear for pii:read, with its tokens in sealed), its inclusion proof, or
    // the quarantine mark when the stored bytes fail their leaf hash or are not JSON.
    private static async Task<SearchItem> ItemAsync(
        string tenantId, LogEntry entry, QueryPosition position, StoredCheckpoint checkpoint, ProofBuilder proofs, StoredLeafCheck leafCheck, Classification.ClassifiedReads.Reader? reader, CancellationToken cancellationToken)
    {
        if (!leafCheck.IsIntact(tenantId, entry))
        {
            return new SearchItem(entry.Index, entry.LeafHash.ToBase64(), null, null)
            {
                Position = position,
                Quarantined = true,
                Error = "The stored bytes do not match the entry's leaf hash; they are not served (integrity-failure).",
                IntegrityFailure = IntegrityFailureType,
            };
        }

        var hashes = await proofs.InclusionProofAsync(entry.Index, checkpoint.Size, cancellationToken).ConfigureAwait(false);
        var inclusion = new InclusionDto(entry.Index, checkpoint.Size, entry.LeafHash.ToBase64(), hashes.Select(h => h.ToBase64()).ToArray());
        JsonElement? leaf;
        try
        {
            using var parsed = JsonDocument.Parse(entry.Leaf);
            leaf = parsed.RootElement.Clone();
        }
        catch (JsonException)
        {
            return new SearchItem(entry.Index, entry.LeafHash.ToBase64(), null, inclusion)
            {
                Position = position,
                Quarantined = true,
                Error = "The stored entry is not valid JSON; it is not served (integrity-failure).",
                IntegrityFailure = IntegrityFailureType,
            };
        }

        if (reader is null)
        {
            return new SearchItem(entry.Index, entry.LeafHash.ToBase64(), leaf, inclusion) { Position = position };
        }

        var shown = await reader.ShowAsync(entry.Leaf, leaf.Value, cancellationToken).ConfigureAwait(false);
        return new SearchItem(entry.Index, entry.LeafHash.ToBase64(), shown.Event, inclusion) { Position = position, Sealed = shown.Sealed, Unopened = shown.Unopened };
    }

    // Every problem names its parameter; an unknown parameter is an error, as in search (a typo must not go unnoticed).
    private static (int Limit, string? Cursor, List<string> Errors) Parse(string subject, IQueryCollection query)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(subject) || subject.Length > SubjectQuery.MaxSubjectLength || subject.Any(char.IsControl))
        {
            errors.Add($"subject: the actor or target id of the data subject, 1 to {SubjectQuery.MaxSubjectLength} characters, no control characters");
        }

        foreach (var (name, values) in query)
        {
            if (!Known.Contains(name))
            {
                errors.Add($"{name}: unknown parameter; use one of {string.Join(", ", Known)}");
            }
            else if (values.Count > 1)
            {
                errors.Add($"{name}: given more than once");
            }
        }

        var limit = DefaultLimit;
        var limitText = query["limit"].ToString();
        if (limitText.Length > 0 && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            errors.Add($"limit: 1 to {MaxLimit}");
        }

        var cursor = query["cursor"].ToString();
        if (cursor.Length > MaxCursorLength || cursor.Any(char.IsControl))
        {
            errors.AddRange(CursorErrors);
        }

        return (limit, cursor.Length > 0 ? cursor : null, errors);
    }

    private static ProblemHttpResult Rebuilding(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "5";
        return Problem.ProjectionRebuilding("The read models are being rebuilt from the log (after damage to them, or since this subject's first page); the subject's events are listed again once they caught up. Ingest is not affected.");
    }
}

/// <summary>
/// A page of a data subject's events. <see cref="Checkpoint"/>: the signed note every item's inclusion proof leads to,
/// the same on every page of one listing. <see cref="Snapshot"/>: every event about the subject with an index below it
/// is in the pages, none at or above it (those are left to a later request). <see cref="Unavailable"/>: indexes the
/// read models list for the subject whose content the log no longer holds. <see cref="ProofPending"/>: true (and the
/// page empty) before the tenant's first checkpoint.
/// </summary>
internal sealed record SubjectEventsResponse(string Subject, IReadOnlyList<SearchItem> Items, string? NextCursor, string? Checkpoint, ulong Snapshot)
{
    public IReadOnlyList<ulong>? Unavailable { get; init; }

    public bool? ProofPending { get; init; }
}
