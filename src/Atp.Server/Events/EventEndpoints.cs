using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Atp.Server.Query;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atp.Server.Events;

/// <summary>Ingestion with receipts, and reading events back by id or in log order.</summary>
internal static class EventEndpoints
{
    private const int MaxIdempotencyKeyLength = 255;

    public static IEndpointRouteBuilder MapEventEndpoints(this IEndpointRouteBuilder app)
    {
        var events = app.MapGroup("/v1/tenants/{tenant}/events").WithTags("Events").RequireTenantAccess();

        events.MapPost("/", IngestAsync)
            .RequireAuthorization(Scopes.EventsWrite)
            .WithSummary("Append one event, or {\"events\":[…]} (up to 1,000 / 1 MiB); returns receipts once durable")
            .WithDescription("503 integrity-failure: the tenant's log is quarantined (its stored tree state failed the fork check); nothing is stored until an operator repairs the store. 503 storage-full (with Retry-After) while the store's disk is full; 503 unavailable when a commit failed otherwise. Nothing of a refused request is stored.")
            .WithName("appendEvents")
            .WithJsonBodyOneOf(typeof(EventBatch), typeof(EventInput))
            .WithParameter("Idempotency-Key", "1-255 printable ASCII characters. A retry with the same key and body gets the first receipts (with `Idempotent-Replayed: true`) and stores nothing again.", location: Microsoft.OpenApi.ParameterLocation.Header, example: "import-2026-11-26-001")
            .Produces<ReceiptsResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status422UnprocessableEntity, StatusCodes.Status503ServiceUnavailable);

        events.MapGet("/", SearchAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("Search: from, to, actor, actorType, action (exact or prefix*), targetType, targetId, outcome, q (full text), order, limit, cursor; verify=true adds the checkpoint and an inclusion proof per event")
            .WithName("searchEvents")
            .WithSearchParameters()
            .Produces<SearchResponse>();

        events.MapGet("/{id}", GetAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("One event with its index and leaf hash; ?verify=true (or proof=true) adds a checkpoint and an inclusion proof")
            .WithName("getEvent")
            .WithParameter("verify", "Add the latest checkpoint and the event's inclusion proof; `proofPending` and `Retry-After` when no checkpoint covers it yet.", Microsoft.OpenApi.JsonSchemaType.Boolean, example: "true")
            .WithParameter("proof", "The same as verify.", Microsoft.OpenApi.JsonSchemaType.Boolean)
            .Produces<EventResponse>();

        var projection = app.MapGroup("/v1/tenants/{tenant}/projection").WithTags("Events").RequireTenantAccess();
        projection.MapGet("/", ProjectionStatusAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("How far search has caught up with the log: projectedSize of treeSize entries are searchable")
            .WithName("getProjection")
            .Produces<ProjectionStatusResponse>();
        projection.MapPost("/rebuild", RebuildProjectionAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithSummary("Rebuild the tenant's read models from its log alone (platform admin)")
            .WithName("rebuildProjection")
            .Produces<ProjectionStatusResponse>();
        return app;
    }

    // The depth bound keeps every accepted event readable by every read path. Duplicate names inside an event are
    // reported by the event reader with their pointer; a duplicate "events" array is refused below.
    private static readonly JsonDocumentOptions IngestParseOptions = new() { MaxDepth = EventReader.MaxBodyDepth };

    private static async Task<IResult> IngestAsync(HttpContext context, IngestionService ingestion, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
        var limits = options.Value.Ingestion;
        var (body, problem) = await JsonBody.ReadBytesAsync(context, limits.MaxRequestBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var idempotencyKey = context.Request.Headers["Idempotency-Key"].ToString();
        if (context.Request.Headers.ContainsKey("Idempotency-Key") && !IsValidIdempotencyKey(idempotencyKey))
        {
            return Problem.Validation($"Idempotency-Key must be 1-{MaxIdempotencyKeyLength} printable ASCII characters.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, IngestParseOptions);
        }
        catch (JsonException e)
        {
            return Problem.MalformedJson($"{e.Message} (a body nests at most {EventReader.MaxBodyDepth} levels, an event's data at most {EventReader.MaxDataDepth})");
        }

        using (document)
        {
            var root = document.RootElement;
            var isBatch = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("events", out var list);
            var items = isBatch ? root.GetProperty("events") : root;
            if (isBatch && items.ValueKind != JsonValueKind.Array)
            {
                return Problem.Validation("\"events\" must be an array of events.");
            }

            // Last-wins would store a different batch than a reviewer or another parser of the same bytes sees.
            if (isBatch && root.EnumerateObject().Count(member => member.NameEquals("events"u8)) > 1)
            {
                return Problem.Validation("The batch has more than one \"events\" member; nothing was stored.");
            }

            var count = isBatch ? items.GetArrayLength() : 1;
            if (count == 0)
            {
                return Problem.Validation("\"events\" is empty.");
            }

            if (count > limits.MaxEventsPerRequest)
            {
                return Problem.TooLarge($"{count} events in one request; at most {limits.MaxEventsPerRequest} are accepted.");
            }

            var errors = new List<EventError>();
            var drafts = new List<EventDraft>(count);
            var i = 0;
            foreach (var element in isBatch ? items.EnumerateArray() : Single(items))
            {
                if (EventReader.Read(element, i++, errors) is { } draft)
                {
                    drafts.Add(draft);
                }
            }

            if (errors.Count > 0)
            {
                var detail = errors.Select(e => new { index = e.Index, pointer = e.Location, detail = e.Detail }).ToArray();
                return Problem.Validation($"{errors.Select(e => e.Index).Distinct().Count()} of {count} events are not valid; nothing was stored.", detail);
            }

            var claim = idempotencyKey.Length > 0 ? new IdempotencyClaim(idempotencyKey, Hash.Sha256(body.Span)) : null;
            var tenant = TenantAccessFilter.Current(context);
            AppendOutcome outcome;
            try
            {
                outcome = await ingestion.AppendAsync(tenant.Id, drafts, claim, cancellationToken).ConfigureAwait(false);
            }
            catch (LogQuarantinedException)
            {
                return Problem.LogQuarantined();
            }
            catch (StorageFullException)
            {
                context.Response.Headers.RetryAfter = ((int)StorageSpace.RetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
                return Problem.StorageFull("The log store's disk is full; nothing was stored. Retry later with the same Idempotency-Key.");
            }
            catch (StoreUnavailableException)
            {
                return Problem.Unavailable("The log store could not make the events durable; nothing was stored. Retry with the same Idempotency-Key.");
            }

            return outcome switch
            {
                Appended appended => Receipts(context, appended),
                IdempotencyKeyReused reused => Problem.IdempotencyKeyReused(reused.Key),
                EventIdConflict conflict => Problem.Conflict("event-id-conflict", $"Event {conflict.Position} has id {conflict.EventId}, which already names a different event of this tenant (or appears twice in the request); nothing was stored."),
                _ => throw new InvalidOperationException("Unknown append outcome."),
            };
        }
    }

    private static JsonHttpResult<ReceiptsResponse> Receipts(HttpContext context, Appended appended)
    {
        if (appended.Replayed)
        {
            context.Response.Headers["Idempotent-Replayed"] = "true";
        }

        var receipts = appended.Receipts.Select(r => new ReceiptDto(r.Id, r.Index, r.LeafHash.ToBase64())).ToArray();
        return TypedResults.Json(new ReceiptsResponse(receipts), statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> GetAsync(HttpContext context, string id, bool? proof, bool? verify, ILogStore store, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
        proof = proof == true || verify == true;
        if (!Guid.TryParseExact(id, "D", out var eventId))
        {
            return Problem.Validation("The event id must be a UUID.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var entry = await store.FindEventAsync(tenant.Id, eventId, cancellationToken).ConfigureAwait(false);
        if (entry is null)
        {
            return Problem.NotFound($"No event {eventId} in this tenant's log.");
        }

        ProofDto? proofDto = null;
        var pending = false;
        if (proof == true)
        {
            var latest = await store.GetLatestCheckpointAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
            if (latest is not null && entry.Index < latest.Size)
            {
                var hashes = await new ProofBuilder(store.NodeReader(tenant.Id)).InclusionProofAsync(entry.Index, latest.Size, cancellationToken).ConfigureAwait(false);
                proofDto = new ProofDto(latest.Note, new InclusionDto(entry.Index, latest.Size, entry.LeafHash.ToBase64(), hashes.Select(h => h.ToBase64()).ToArray()));
            }
            else
            {
                // Not sealed yet: the next checkpoint (within one interval) will cover it.
                pending = true;
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.Integrity.CheckpointInterval.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return TypedResults.Ok(new EventResponse(ToItem(entry), proofDto, pending ? true : null));
    }

    private static readonly string[] CursorErrors = ["cursor: not a cursor of this search (cursors are bound to the tenant and the filters)"];

    private static async Task<IResult> SearchAsync(HttpContext context, IEventQueryStore search, ILogStore store, QueryCursor cursors, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
        // A page stops early rather than exceed this many bytes of leaves; the cursor continues from where it stopped.
        var maxResponseBytes = options.Value.Query.MaxResponseBytes;
        var tenant = TenantAccessFilter.Current(context);
        var (query, digest, verify, cursor, errors) = SearchRequest.Parse(tenant.Id, context.Request.Query);
        if (query is null)
        {
            return Problem.Validation("The search is not valid.", errors);
        }

        StoredCheckpoint? checkpoint = null;
        if (verify)
        {
            checkpoint = await store.GetLatestCheckpointAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        }

        if (cursor is not null)
        {
            if (!cursors.TryDecode(cursor, digest, out var state) || state.Ascending != query.Ascending)
            {
                return Problem.Validation("The search is not valid.", CursorErrors);
            }

            query = query with { SnapshotSize = state.SnapshotSize, After = state.After };
        }
        else
        {
            // The first page pins the snapshot: what is searchable now (and, to be provable, sealed). A verified search
            // never returns an entry without its proof: before the first checkpoint it says so and when to ask again.
            var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
            var snapshot = status?.ProjectedSize ?? 0;
            if (verify && checkpoint is null)
            {
                if (snapshot > 0)
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.Integrity.CheckpointInterval.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                    return TypedResults.Ok(new SearchResponse([], null, null, ProofPending: true));
                }

                return TypedResults.Ok(new SearchResponse([], null, null));
            }

            query = query with { SnapshotSize = checkpoint is null ? snapshot : Math.Min(snapshot, checkpoint.Size) };
        }

        if (checkpoint is not null && query.SnapshotSize > checkpoint.Size)
        {
            query = query with { SnapshotSize = checkpoint.Size };
        }

        var page = await search.SearchAsync(query, cancellationToken).ConfigureAwait(false);
        var items = new List<SearchItem>(page.Hits.Count);
        var bytes = 0L;
        var hasMore = page.HasMore;
        var proofs = checkpoint is null ? null : new ProofBuilder(store.NodeReader(tenant.Id));
        foreach (var hit in page.Hits)
        {
            bytes += hit.Entry.Leaf.Length;
            if (bytes > maxResponseBytes && items.Count > 0)
            {
                hasMore = true;
                break;
            }

            InclusionDto? inclusion = null;
            if (proofs is not null)
            {
                var hashes = await proofs.InclusionProofAsync(hit.Entry.Index, checkpoint!.Size, cancellationToken).ConfigureAwait(false);
                inclusion = new InclusionDto(hit.Entry.Index, checkpoint.Size, hit.Entry.LeafHash.ToBase64(), hashes.Select(h => h.ToBase64()).ToArray());
            }

            var item = ToItem(hit.Entry);
            items.Add(new SearchItem(item.Index, item.LeafHash, item.Event, inclusion) { Position = hit.Position });
        }

        var next = hasMore && items.Count > 0
            ? cursors.Encode(new QueryCursor.State(query.Ascending, query.SnapshotSize, items[^1].Position), digest)
            : null;
        return TypedResults.Ok(new SearchResponse(items, next, checkpoint?.Note));
    }

    private static async Task<IResult> ProjectionStatusAsync(HttpContext context, IEventQueryStore search, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ProjectionStatusResponse(status?.ProjectedSize ?? 0, status?.TreeSize ?? 0));
    }

    private static async Task<IResult> RebuildProjectionAsync(HttpContext context, IEventQueryStore search, Audit.PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var size = await search.RebuildProjectionsAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(Audit.PlatformEvents.AdminAction(context, "projection.rebuilt", tenant.Id, new() { ["entries"] = size.ToString(System.Globalization.CultureInfo.InvariantCulture) }), cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ProjectionStatusResponse(size, size));
    }

    private static EventItem ToItem(LogEntry entry)
    {
        using var leaf = JsonDocument.Parse(entry.Leaf);
        return new EventItem(entry.Index, entry.LeafHash.ToBase64(), leaf.RootElement.Clone());
    }

    private static IEnumerable<JsonElement> Single(JsonElement element)
    {
        yield return element;
    }

    private static bool IsValidIdempotencyKey(string key) =>
        key.Length is > 0 and <= MaxIdempotencyKeyLength && key.All(c => c is >= '!' and <= '~');
}

internal sealed record ReceiptDto(Guid Id, ulong Index, string LeafHash);

internal sealed record ReceiptsResponse(IReadOnlyList<ReceiptDto> Receipts);

internal sealed record EventItem(ulong Index, string LeafHash, JsonElement Event);

/// <summary>A search hit; <see cref="Inclusion"/> only with verify=true.</summary>
internal sealed record SearchItem(ulong Index, string LeafHash, JsonElement Event, InclusionDto? Inclusion)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public Atp.Core.Query.QueryPosition Position { get; init; }
}

/// <summary>A page; <see cref="Checkpoint"/> (the signed note every inclusion proof leads to) only with verify=true.</summary>
/// <summary>A page; <see cref="ProofPending"/> is true (and the page empty) when verify=true found entries that no checkpoint covers yet.</summary>
internal sealed record SearchResponse(IReadOnlyList<SearchItem> Items, string? NextCursor, string? Checkpoint, bool? ProofPending = null);

internal sealed record ProjectionStatusResponse(ulong ProjectedSize, ulong TreeSize);

internal sealed record InclusionDto(ulong Index, ulong TreeSize, string LeafHash, IReadOnlyList<string> Hashes);

internal sealed record ProofDto(string Checkpoint, InclusionDto Inclusion);

internal sealed record EventResponse(EventItem Event, ProofDto? Proof, bool? ProofPending);
