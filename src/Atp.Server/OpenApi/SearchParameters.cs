using Atp.Server.Query;
using Microsoft.OpenApi;

namespace Atp.Server.OpenApi;

/// <summary>The query string of the event search (validated by <see cref="SearchRequest"/>; an unknown parameter is a 400).</summary>
internal static class SearchParameters
{
    public static RouteHandlerBuilder WithSearchParameters(this RouteHandlerBuilder builder) => builder
        .WithParameter("from", "Events that occurred at or after this RFC 3339 date-time (with Z or an offset).", format: "date-time", example: "2026-11-26T00:00:00Z")
        .WithParameter("to", "Events that occurred before this RFC 3339 date-time; later than from.", format: "date-time", example: "2026-11-27T00:00:00Z")
        .WithParameter("actor", "The actor's id, exactly.", example: "u-17")
        .WithParameter("actorType", "The actor's type, exactly.", example: "user")
        .WithParameter("action", "The action exactly, or a prefix ending in a single '*'.", example: "document.*")
        .WithParameter("targetType", "The type of one of the targets, exactly.", example: "document")
        .WithParameter("targetId", "The id of one of the targets, exactly.", example: "doc-8812")
        .WithParameter("outcome", "The outcome.", values: ["success", "failure", "unknown"])
        .WithParameter("q", "Full-text search over the event's text.", example: "title")
        .WithParameter("order", "Log order: newest first (desc, the default) or oldest first.", values: ["asc", "desc"])
        .WithParameter("limit", $"Events per page, 1 to {SearchRequest.MaxLimit} (default 100); a page also stops before the response size limit.", JsonSchemaType.Integer, "int32", "100", minimum: 1, maximum: SearchRequest.MaxLimit)
        .WithParameter("cursor", "The nextCursor of the previous page, with the same filters (at most 200 characters).", example: "AQAAAAAAAAAAAgjfS6ZF8V0AAAAAAAAAAAH_u7HV5B0OUSUDvt1uKx5QuuXY6znJVvxD1IMswY-KAQ")
        .WithParameter("verify", "Add the latest checkpoint and an inclusion proof per event, against that checkpoint.", JsonSchemaType.Boolean, example: "true");
}
