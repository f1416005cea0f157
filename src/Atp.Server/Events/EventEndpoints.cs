using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Server.Gateway;
using Atp.Server.Integrity;
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
            .WithDescription("400 schema-violation: an event's data does not match its type's registered schema (the version its schemaVersion names, else the latest), it names a version the type does not have, or its type is unregistered while the tenant sets requireRegisteredTypes; errors name the event index, the JSON pointer and the schema keyword. 409 read-only-replica: the tenant in this cell is a replica imported from another cell's export bundles (atp import); nothing is stored. 503 integrity-failure: the tenant's log is quarantined (its stored tree state failed the fork check, or was rolled back behind a published checkpoint); nothing is stored until an operator repairs the store or accepts the rollback. 503 storage-full (with Retry-After) while the store's disk is full; 503 unavailable when a commit failed otherwise. 507 quota-exceeded: storing the request would take the tenant past its maxStoredEvents or maxStoredBytes (the detail names the quota, its limit and the usage); requests in flight at the same time may together overshoot by at most what they carry. Nothing of a refused request is stored.")
            .WithName("appendEvents")
            .WithJsonBodyOneOf(typeof(EventBatch), typeof(EventInput))
            .WithParameter("Idempotency-Key", "1-255 printable ASCII characters. A retry with the same key and body gets the first receipts (with `Idempotent-Replayed: true`) and stores nothing again.", location: Microsoft.OpenApi.ParameterLocation.Header, example: "import-2026-11-26-001")
            .Produces<ReceiptsResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status422UnprocessableEntity, StatusCodes.Status503ServiceUnavailable, StatusCodes.Status507InsufficientStorage);

        events.MapGet("/", SearchAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithReadCost(ReadCost.Search)
            .WithSummary("Search: from, to, actor, actorType, action (exact or prefix*), targetType, targetId, outcome, q (full text), order, limit, cursor; verify=true adds the checkpoint and an inclusion proof per event; an item whose stored bytes fail their leaf hash or are not JSON is marked quarantined with integrityFailure set and no event; callers holding pii:read see classified fields in clear, with the committed tokens in each item's sealed (JSON pointer → token)")
            .WithName("searchEvents")
            .WithSearchParameters()
            .Produces<SearchResponse>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        events.MapGet("/{id}", GetAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithReadCost(ReadCost.Event)
            .WithSummary("One event with its index and leaf hash; ?verify=true (or proof=true) adds a checkpoint and an inclusion proof; 500 integrity-failure if the stored bytes no longer match the leaf hash; callers holding pii:read see classified fields in clear, with the committed tokens in event.sealed (JSON pointer → token); 410 purged (with the purge record) once retention removed its content")
            .WithName("getEvent")
            .WithParameter("verify", "Add the latest checkpoint and the event's inclusion proof; `proofPending` and `Retry-After` when no checkpoint covers it yet.", Microsoft.OpenApi.JsonSchemaType.Boolean, example: "true")
            .WithParameter("proof", "The same as verify.", Microsoft.OpenApi.JsonSchemaType.Boolean)
            .Produces<EventResponse>()
            .ProducesProblem(StatusCodes.Status410Gone)
            .ProducesProblem(StatusCodes.Status500InternalServerError);

        var projection = app.MapGroup("/v1/tenants/{tenant}/projection").WithTags("Events").RequireTenantAccess();
        projection.MapGet("/", ProjectionStatusAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("How far search has caught up with the log: every entry below projectedSize was handled (searchable, or a dead letter); complete when projectedSize = treeSize")
            .WithName("getProjection")
            .Produces<ProjectionStatusResponse>();
        projection.MapPost("/rebuild", RebuildProjectionAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithMetadata(new ReadModelMaintenance())
            .WithSummary("Rebuild the tenant's read models from its log alone (platform admin; the platform log's tenant included)")
            .WithName("rebuildProjection")
            .Produces<ProjectionStatusResponse>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        projection.MapGet("/dead-letters", DeadLettersAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithSummary("The tenant's entries the projector could not project, lowest index first (platform admin); limit 1-1000, default 100")
            .WithName("listDeadLetters")
            .WithParameter("limit", "How many dead letters, 1-1000 (default 100).", Microsoft.OpenApi.JsonSchemaType.Integer, "int32", "100", minimum: 1)
            .Produces<DeadLettersResponse>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        projection.MapPost("/dead-letters/retry", RetryDeadLettersAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithMetadata(new ReadModelMaintenance())
            .WithSummary("Project the tenant's dead letters again; those that now project become searchable (platform admin)")
            .WithName("retryDeadLetters")
            .Produces<DeadLetterRetryResponse>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    // The depth bound keeps every accepted event readable by every read path. Duplicate names inside an event are
    // reported by the event reader with their pointer; a duplicate "events" array is refused below.
    private static readonly JsonDocumentOptions IngestParseOptions = new() { MaxDepth = EventReader.MaxBodyDepth };

    private static async Task<IResult> IngestAsync(HttpContext context, IngestionService ingestion, Schemas.SchemaRegistry schemas, Classification.TenantClassifications classifications, TenantRateLimiter rateLimiter, Audit.PlatformAuditLog audit, Telemetry.AtpMetrics metrics, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
        if (TenantAccessFilter.Current(context).IsReplica)
        {
            return Problem.ReadOnlyReplica();
        }

        var limits = options.Value.Ingestion;
        var limited = !Gateway.AtpClaims.IsPlatformAdmin(context.User);
        if (limited && rateLimiter.RefuseIngestEarly(TenantAccessFilter.Current(context), context.Request.ContentLength) is { } early)
        {
            return RateLimited(context, audit, early);
        }

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

            // Work, not requests: the parsed batch is charged its events and bytes (platform admins are not limited).
            var tenant = TenantAccessFilter.Current(context);
            if (limited && rateLimiter.TryAcquireIngestWork(tenant, count, body.Length) is { } refusal)
            {
                return RateLimited(context, audit, refusal);
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

            // The tenant's registered schemas (docs/schemas.md): data against the version each event names, else the latest.
            var schemaErrors = await schemas.ValidateAsync(tenant, drafts, cancellationToken).ConfigureAwait(false);
            if (schemaErrors.Count > 0)
            {
                return Problem.Create(
                    400,
                    "schema-violation",
                    "An event does not match its type's schema",
                    $"{schemaErrors.Select(e => e.Index).Distinct().Count()} of {count} events do not match their type's registered schema; nothing was stored.",
                    schemaErrors.Select(e => new { index = e.Index, pointer = e.Pointer, keyword = e.Keyword, schemaVersion = e.SchemaVersion, detail = e.Detail }).ToArray());
            }

            var claim = idempotencyKey.Length > 0 ? new IdempotencyClaim(idempotencyKey, Hash.Sha256(body.Span)) : null;
            var sealing = await classifications.PlanAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
            AppendOutcome outcome;
            try
            {
                outcome = await ingestion.AppendClassifiedAsync(tenant.Id, drafts, claim, AtpClaims.SubmitterOf(context.User), StorageQuotaOf(tenant, options.Value), sealing, cancellationToken).ConfigureAwait(false);
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

            if (outcome is Appended durable)
            {
                metrics.Ingested(tenant.Edition, tenant.Id, durable.Receipts.Count, durable.Replayed);
            }

            return outcome switch
            {
                Appended appended => Receipts(context, appended),
                IdempotencyKeyReused reused => Problem.IdempotencyKeyReused(reused.Key),
                LeafTooLarge tooLarge => Problem.Validation(
                    $"1 of {count} events are not valid; nothing was stored.",
                    new[] { new { index = tooLarge.Position, pointer = "", detail = $"its stored form would be {tooLarge.Bytes} bytes; an entry is at most {LeafWriter.MaxLeafBytes} bytes (the C2SP tlog-tiles entry limit), so make data smaller" } }),
                QuotaExceeded quota => Problem.QuotaExceeded(
                    $"Storing this request would take the tenant past its {quota.Quota} of {quota.Limit}: {quota.Usage} are stored and the request adds {quota.Requested}; nothing was stored. Ask the platform admin to raise the quota."),
                EventIdConflict conflict => Problem.Conflict("event-id-conflict", $"Event {conflict.Position} has id {conflict.EventId}, which already names a different event of this tenant (or appears twice in the request); nothing was stored."),
                _ => throw new InvalidOperationException("Unknown append outcome."),
            };
        }
    }

    // The tenant's override, else its edition's default; 0 is unlimited.
    private static StorageQuota StorageQuotaOf(Tenant tenant, AtpOptions options)
    {
        var limits = options.RateLimits.For(tenant.Edition);
        return new StorageQuota(tenant.Settings.MaxStoredEvents ?? limits.MaxStoredEvents, tenant.Settings.MaxStoredBytes ?? limits.MaxStoredBytes);
    }

    private static ProblemHttpResult RateLimited(HttpContext context, Audit.PlatformAuditLog audit, RateLimitRefusal refusal)
    {
        refusal.WriteHeaders(context.Response);
        audit.ReportRateLimited(context, TenantAccessFilter.Current(context).Id, refusal.Policy);
        return Problem.RateLimited(refusal.TenantDetail);
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

    private static async Task<IResult> GetAsync(HttpContext context, string id, bool? proof, bool? verify, ILogStore store, StoredLeafCheck leafCheck, Classification.ClassifiedReads classified, IOptions<AtpOptions> options, CancellationToken cancellationToken)
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

        if (entry.PurgedBy is not null)
        {
            return await Retention.PurgedEntries.ProblemAsync(store, tenant.Id, entry, cancellationToken).ConfigureAwait(false);
        }

        if (!leafCheck.IsIntact(tenant.Id, entry))
        {
            return StoredLeafCheck.Problem(entry.Index);
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

        if (TryParseLeaf(entry) is not { } leaf)
        {
            return Problem.IntegrityFailure($"Entry {entry.Index} of this tenant's log is stored as bytes that are not valid JSON; it is not served. Its leaf hash is {entry.LeafHash.ToBase64()}.");
        }

        var item = new EventItem(entry.Index, entry.LeafHash.ToBase64(), leaf);
        if (classified.ReaderFor(context.User, tenant.Id) is { } reader)
        {
            var shown = await reader.ShowAsync(entry.Leaf, leaf, cancellationToken).ConfigureAwait(false);
            item = item with { Event = shown.Event, Sealed = shown.Sealed, Unopened = shown.Unopened };
        }

        return TypedResults.Ok(new EventResponse(item, proofDto, pending ? true : null));
    }

    private const string IntegrityFailureType = "https://atp.dev/problems/integrity-failure";

    private static readonly string[] CursorErrors = ["cursor: not a cursor of this search (cursors are bound to the tenant and the filters)"];

    private static async Task<IResult> SearchAsync(HttpContext context, IEventQueryStore search, ILogStore store, QueryCursor cursors, StoredLeafCheck leafCheck, Classification.ClassifiedReads classified, IOptions<AtpOptions> options, CancellationToken cancellationToken)
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

        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        if (status is { Rebuilding: true })
        {
            return Rebuilding(context);
        }

        var projected = status?.ProjectedSize ?? 0;
        if (cursor is not null)
        {
            if (!cursors.TryDecode(cursor, digest, out var state) || state.Ascending != query.Ascending)
            {
                return Problem.Validation("The search is not valid.", CursorErrors);
            }

            // The cursor's snapshot is a prefix every entry of which was handled when the first page was served; read
            // models rebuilt since then hold less until they catch up, and a page from them would silently miss entries.
            if (state.SnapshotSize > projected)
            {
                return Rebuilding(context);
            }

            query = query with { SnapshotSize = state.SnapshotSize, After = state.After };
        }
        else
        {
            // The first page pins the snapshot: what is searchable now (and, to be provable, sealed). A verified search
            // never returns an entry without its proof: before the first checkpoint it says so and when to ask again.
            if (verify && checkpoint is null)
            {
                if (projected > 0)
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.Integrity.CheckpointInterval.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                    return TypedResults.Ok(new SearchResponse([], null, null, 0, ProofPending: true));
                }

                return TypedResults.Ok(new SearchResponse([], null, null, 0));
            }

            query = query with { SnapshotSize = checkpoint is null ? projected : Math.Min(projected, checkpoint.Size) };
        }

        if (checkpoint is not null && query.SnapshotSize > checkpoint.Size)
        {
            query = query with { SnapshotSize = checkpoint.Size };
        }

        QueryPage page;
        try
        {
            page = await search.SearchAsync(query, cancellationToken).ConfigureAwait(false);
        }
        catch (ProjectionRebuildingException)
        {
            return Rebuilding(context);
        }

        var items = new List<SearchItem>(page.Hits.Count);
        var bytes = 0L;
        var hasMore = page.HasMore;
        var proofs = checkpoint is null ? null : new ProofBuilder(store.NodeReader(tenant.Id));
        var reader = classified.ReaderFor(context.User, tenant.Id);
        foreach (var hit in page.Hits)
        {
            bytes += hit.Entry.Leaf.Length;
            if (bytes > maxResponseBytes && items.Count > 0)
            {
                hasMore = true;
                break;
            }

            if (!leafCheck.IsIntact(tenant.Id, hit.Entry))
            {
                // The rest of the page is sound; this item is marked, and its altered bytes are not served.
                items.Add(new SearchItem(hit.Entry.Index, hit.Entry.LeafHash.ToBase64(), null, null)
                {
                    Position = hit.Position,
                    Quarantined = true,
                    Error = "The stored bytes do not match the entry's leaf hash; they are not served (integrity-failure).",
                    IntegrityFailure = IntegrityFailureType,
                });
                continue;
            }

            InclusionDto? inclusion = null;
            if (proofs is not null)
            {
                var hashes = await proofs.InclusionProofAsync(hit.Entry.Index, checkpoint!.Size, cancellationToken).ConfigureAwait(false);
                inclusion = new InclusionDto(hit.Entry.Index, checkpoint.Size, hit.Entry.LeafHash.ToBase64(), hashes.Select(h => h.ToBase64()).ToArray());
            }

            // An entry stored as bytes that are no longer JSON is marked, not served, and the page goes on.
            var leaf = TryParseLeaf(hit.Entry);
            IReadOnlyDictionary<string, string>? sealedFields = null;
            IReadOnlyDictionary<string, string>? unopened = null;
            if (leaf is { } stored && reader is not null)
            {
                var shown = await reader.ShowAsync(hit.Entry.Leaf, stored, cancellationToken).ConfigureAwait(false);
                (leaf, sealedFields, unopened) = (shown.Event, shown.Sealed, shown.Unopened);
            }

            items.Add(new SearchItem(hit.Entry.Index, hit.Entry.LeafHash.ToBase64(), leaf, inclusion)
            {
                Position = hit.Position,
                Sealed = sealedFields,
                Unopened = unopened,
                Quarantined = leaf is null ? true : null,
                Error = leaf is null ? "The stored entry is not valid JSON; it is not served (integrity-failure)." : null,
                IntegrityFailure = leaf is null ? IntegrityFailureType : null,
            });
        }

        var next = hasMore && items.Count > 0
            ? cursors.Encode(new QueryCursor.State(query.Ascending, query.SnapshotSize, items[^1].Position), digest)
            : null;
        return TypedResults.Ok(new SearchResponse(items, next, checkpoint?.Note, query.SnapshotSize));
    }

    private static async Task<IResult> ProjectionStatusAsync(HttpContext context, IEventQueryStore search, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(ProjectionStatusResponse.Of(status ?? new ProjectionStatus(0, 0)));
    }

    private static async Task<IResult> RebuildProjectionAsync(HttpContext context, IEventQueryStore search, Audit.PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        ulong size;
        try
        {
            size = await search.RebuildProjectionsAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (ProjectionRebuildingException)
        {
            return Rebuilding(context);
        }

        await audit.RecordAsync(Audit.PlatformEvents.AdminAction(context, "projection.rebuilt", tenant.Id, new() { ["entries"] = size.ToString(System.Globalization.CultureInfo.InvariantCulture) }), cancellationToken).ConfigureAwait(false);
        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(ProjectionStatusResponse.Of(status ?? new ProjectionStatus(size, size)));
    }

    private static async Task<IResult> DeadLettersAsync(HttpContext context, int? limit, IEventQueryStore search, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
        {
            return Problem.Validation("limit must be 1-1000.");
        }

        var tenant = TenantAccessFilter.Current(context);
        try
        {
            var letters = await search.ListDeadLettersAsync(tenant.Id, limit ?? 100, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new DeadLettersResponse(letters.Select(DeadLetterDto.Of).ToArray()));
        }
        catch (ProjectionRebuildingException)
        {
            return Rebuilding(context);
        }
    }

    private static async Task<IResult> RetryDeadLettersAsync(HttpContext context, IEventQueryStore search, Audit.PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        int projected;
        try
        {
            projected = await search.RetryDeadLettersAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (ProjectionRebuildingException)
        {
            return Rebuilding(context);
        }

        var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        var remaining = status?.DeadLetters ?? 0;
        await audit.RecordAsync(
            Audit.PlatformEvents.AdminAction(context, "projection.dead_letters_retried", tenant.Id, new()
            {
                ["projected"] = projected.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["remaining"] = remaining.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new DeadLetterRetryResponse(projected, remaining));
    }

    // The rebuild's end is not predictable from here (it depends on the log's size); a few seconds keeps polling cheap.
    private static ProblemHttpResult Rebuilding(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "5";
        return Problem.ProjectionRebuilding("The read models are being rebuilt from the log (after damage to them, or since this search's first page); search answers again once they caught up. Ingest is not affected.");
    }

    // The leaf as JSON, or null when the stored bytes are no longer JSON (the caller marks or refuses the entry).
    private static JsonElement? TryParseLeaf(LogEntry entry)
    {
        try
        {
            using var leaf = JsonDocument.Parse(entry.Leaf);
            return leaf.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
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

/// <summary>
/// An event with its place in the log. <see cref="Sealed"/> (only for callers holding <c>pii:read</c>, only when a
/// classified field was shown in clear): the token the leaf holds at each such JSON pointer. Beside the event, not in
/// it: <see cref="Event"/> with each token put back at its pointer is the leaf, so its leaf hash recomputes.
/// </summary>
internal sealed record EventItem(ulong Index, string LeafHash, JsonElement Event)
{
    public IReadOnlyDictionary<string, string>? Sealed { get; init; }

    /// <summary>
    /// For a <c>pii:read</c> caller, the tokens that stayed sealed in <see cref="Event"/>, by JSON pointer, with why:
    /// <c>key-missing</c> (the subject was erased, or the token was not sealed by this tenant), <c>key-unwrap-failed</c>,
    /// <c>does-not-open</c> (altered, or moved from another field), <c>malformed</c>, <c>not-json</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Unopened { get; init; }
}

/// <summary>
/// A search hit; <see cref="Inclusion"/> only with verify=true. An entry whose stored bytes are no longer JSON comes
/// without <see cref="Event"/>, with <see cref="Quarantined"/> true and an <see cref="Error"/>.
/// </summary>
internal sealed record SearchItem(ulong Index, string LeafHash, JsonElement? Event, InclusionDto? Inclusion)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public Atp.Core.Query.QueryPosition Position { get; init; }

    /// <summary>As <see cref="EventItem.Sealed"/>: the leaf's tokens where <see cref="Event"/> shows clear values to a <c>pii:read</c> caller.</summary>
    public IReadOnlyDictionary<string, string>? Sealed { get; init; }

    /// <summary>As <see cref="EventItem.Unopened"/>.</summary>
    public IReadOnlyDictionary<string, string>? Unopened { get; init; }

    public bool? Quarantined { get; init; }

    public string? Error { get; init; }

    /// <summary>The problem type, set with <see cref="Quarantined"/> when the stored bytes failed their leaf hash or are not JSON.</summary>
    public string? IntegrityFailure { get; init; }
}

/// <summary>
/// A page; <see cref="Checkpoint"/> (the signed note every inclusion proof leads to) only with verify=true.
/// <see cref="Snapshot"/>: the log prefix the search covers, pinned by its first page: every matching entry with an
/// index below it is in the pages (or a dead letter), none at or above it. <see cref="ProofPending"/> is true (and the
/// page empty) when verify=true found entries that no checkpoint covers yet.
/// </summary>
internal sealed record SearchResponse(IReadOnlyList<SearchItem> Items, string? NextCursor, string? Checkpoint, ulong Snapshot, bool? ProofPending = null);

/// <summary>
/// <see cref="ProjectedSize"/>: every entry below it was handled (searchable, or a dead letter); <see cref="Complete"/>
/// when that is the whole log. <see cref="Rebuilding"/>: the read models are rebuilt after damage, search answers 503.
/// </summary>
internal sealed record ProjectionStatusResponse(ulong ProjectedSize, ulong TreeSize, bool Complete, long DeadLetters, bool Rebuilding)
{
    public static ProjectionStatusResponse Of(ProjectionStatus status) =>
        new(status.ProjectedSize, status.TreeSize, !status.Rebuilding && status.ProjectedSize >= status.TreeSize, status.DeadLetters, status.Rebuilding);
}

internal sealed record DeadLetterDto(ulong Index, string Error, DateTimeOffset FirstSeen, DateTimeOffset LastSeen, int Attempts)
{
    public static DeadLetterDto Of(DeadLetter letter) => new(letter.Index, letter.Error, letter.FirstSeen, letter.LastSeen, letter.Attempts);
}

internal sealed record DeadLettersResponse(IReadOnlyList<DeadLetterDto> DeadLetters);

/// <summary><see cref="Projected"/> dead letters now projected; <see cref="Remaining"/> still set aside.</summary>
internal sealed record DeadLetterRetryResponse(int Projected, long Remaining);

internal sealed record InclusionDto(ulong Index, ulong TreeSize, string LeafHash, IReadOnlyList<string> Hashes);

internal sealed record ProofDto(string Checkpoint, InclusionDto Inclusion);

internal sealed record EventResponse(EventItem Event, ProofDto? Proof, bool? ProofPending);
