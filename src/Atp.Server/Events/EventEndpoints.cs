using System.Buffers.Text;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Gateway;
using Atp.Server.Problems;
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
            .WithSummary("Append one event, or {\"events\":[…]} (up to 1,000 / 1 MiB); returns receipts once durable");

        events.MapGet("/", ListAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("Events in log order (limit, cursor); search filters arrive with the query engine");

        events.MapGet("/{id}", GetAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("One event with its index and leaf hash; ?proof=true adds a checkpoint and an inclusion proof");
        return app;
    }

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
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            return Problem.MalformedJson(e.Message);
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

    private static async Task<IResult> GetAsync(HttpContext context, string id, bool? proof, ILogStore store, IOptions<AtpOptions> options, CancellationToken cancellationToken)
    {
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

    private static async Task<IResult> ListAsync(HttpContext context, int? limit, string? cursor, ILogStore store, CancellationToken cancellationToken)
    {
        var take = limit ?? 100;
        if (take is < 1 or > 1000)
        {
            return Problem.Validation("limit: 1 to 1000.");
        }

        var from = 0UL;
        if (cursor is not null && !TryDecodeCursor(cursor, out from))
        {
            return Problem.Validation("cursor: not a cursor returned by this API.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var entries = await store.ListEntriesAsync(tenant.Id, from, take + 1, cancellationToken).ConfigureAwait(false);
        var page = entries.Take(take).Select(ToItem).ToArray();
        var next = entries.Count > take ? EncodeCursor(entries[take].Index) : null;
        return TypedResults.Ok(new EventListResponse(page, next));
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

    private static string EncodeCursor(ulong index) => Base64Url.EncodeToString(BitConverter.GetBytes(index));

    private static bool TryDecodeCursor(string cursor, out ulong index)
    {
        index = 0;
        Span<byte> bytes = stackalloc byte[8];
        if (cursor.Length != Base64Url.GetEncodedLength(8) || !Base64Url.IsValid(cursor))
        {
            return false;
        }

        if (Base64Url.DecodeFromChars(cursor, bytes) != 8)
        {
            return false;
        }

        index = BitConverter.ToUInt64(bytes);
        return true;
    }
}

internal sealed record ReceiptDto(Guid Id, ulong Index, string LeafHash);

internal sealed record ReceiptsResponse(IReadOnlyList<ReceiptDto> Receipts);

internal sealed record EventItem(ulong Index, string LeafHash, JsonElement Event);

internal sealed record EventListResponse(IReadOnlyList<EventItem> Items, string? NextCursor);

internal sealed record InclusionDto(ulong Index, ulong TreeSize, string LeafHash, IReadOnlyList<string> Hashes);

internal sealed record ProofDto(string Checkpoint, InclusionDto Inclusion);

internal sealed record EventResponse(EventItem Event, ProofDto? Proof, bool? ProofPending);
