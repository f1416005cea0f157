using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Atp.Server.Problems;

/// <summary>RFC 9457 problem responses. Each kind has a stable type URI clients can switch on.</summary>
internal static class Problem
{
    private const string TypeBase = "https://atp.dev/problems/";

    public static ProblemHttpResult Validation(string detail, object? errors = null) => Create(400, "validation", "The request is not valid", detail, errors);

    public static ProblemHttpResult MalformedJson(string detail) => Create(400, "malformed-json", "The request body is not valid JSON", detail);

    public static ProblemHttpResult Unauthenticated(string detail) => Create(401, "unauthenticated", "Authentication is required", detail);

    public static ProblemHttpResult SignatureRequired() =>
        Create(401, "signature-required", "A signed request is required", "This tenant accepts only requests signed with RFC 9421 (label atp, hmac-sha256); a bearer API key alone is refused.");

    public static ProblemHttpResult RateLimited(string detail) => Create(429, "rate-limited", "Too many requests", detail);

    public static ProblemHttpResult Forbidden(string detail) => Create(403, "forbidden", "The credential may not do this", detail);

    public static ProblemHttpResult TenantSuspended() => Create(403, "tenant-suspended", "The tenant is suspended", "Every call for a suspended tenant is refused.");

    public static ProblemHttpResult NotFound(string detail) => Create(404, "not-found", "Not found", detail);

    public static ProblemHttpResult Conflict(string slug, string detail) => Create(409, slug, "Conflict", detail);

    /// <summary>409 <c>read-only-replica</c>: the tenant in this cell is a copy imported from another cell's export bundles.</summary>
    public static ProblemHttpResult ReadOnlyReplica() =>
        Create(409, "read-only-replica", "The tenant is a read-only replica", "This cell holds a replica of the tenant's log imported from another cell's export bundles; events are appended only at the source cell. Nothing was stored.");

    public static ProblemHttpResult Misdirected(string detail) => Create(421, "residency", "Misdirected request: residency", detail);

    public static ProblemHttpResult TooLarge(string detail) => Create(413, "too-large", "The request is too large", detail);

    public static ProblemHttpResult UnsupportedMediaType() => Create(415, "unsupported-media-type", "Unsupported media type", "Send the body as application/json.");

    public static ProblemHttpResult IdempotencyKeyReused(string key) =>
        Create(422, "idempotency-key-reused", "Idempotency-Key reused with a different request", $"The Idempotency-Key '{key}' was first used with a different request body; nothing was stored.");

    /// <summary>The tenant's log is quarantined: its stored tree state does not match its signed history (a fork ATP will not sign).</summary>
    public static ProblemHttpResult LogQuarantined() =>
        Create(
            503,
            "integrity-failure",
            "The tenant's log failed an integrity check",
            "This tenant's stored log does not match the checkpoints signed for it, so ATP appends nothing to it and signs nothing for it until an operator repairs the store. Nothing was stored; reads are still served.");
    /// <summary>503 <c>storage-full</c>; the caller adds <c>Retry-After</c>.</summary>
    public static ProblemHttpResult StorageFull(string detail) => Create(503, "storage-full", "The store's disk is full", detail);

    public static ProblemHttpResult QuotaExceeded(string detail) => Create(507, "quota-exceeded", "The tenant's storage quota is used up", detail);

    public static ProblemHttpResult Unavailable(string detail) => Create(503, "unavailable", "The service cannot complete the request now", detail);

    /// <summary>Stored data failed a check on the way out: ATP answers this rather than serve it.</summary>
    public static ProblemHttpResult IntegrityFailure(string detail) => Create(500, "integrity-failure", "Stored data failed an integrity check", detail);

    /// <summary>Search is unavailable while the read models are rebuilt from the log (send Retry-After with it).</summary>
    public static ProblemHttpResult ProjectionRebuilding(string detail) => Create(503, "projection-rebuilding", "Search is being rebuilt", detail);

    /// <summary>
    /// Gives the framework's own problems (404 and 405 for unmapped routes and methods, 500 from the exception handler)
    /// an ATP problem type, so every problem a client sees is documented under one base URI.
    /// </summary>
    public static void UseAtpType(ProblemDetailsContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var problem = context.ProblemDetails;
        AddCorrelation(context);
        if (problem.Type?.StartsWith(TypeBase, StringComparison.Ordinal) == true)
        {
            return;
        }

        problem.Type = TypeBase + (problem.Status switch
        {
            404 => "not-found",
            405 => "method-not-allowed",
            401 => "unauthenticated",
            403 => "forbidden",
            408 => "request-timeout",
            413 => "too-large",
            415 => "unsupported-media-type",
            429 => "rate-limited",
            >= 400 and < 500 => "malformed-request",
            503 => "unavailable",
            _ => "internal-error",
        });

        // A 500 says what happened in general terms only; the details (never secrets) are in the server's log.
        if (problem.Status is null or >= 500 && problem.Detail is null)
        {
            problem.Detail = "The server could not complete the request; the error is logged with this request's id.";
        }
    }

    /// <summary>
    /// Every problem, ATP's own and the framework's, names the request (<c>requestId</c>, also the <c>RequestId</c> of
    /// its log lines) and its W3C trace (<c>traceId</c>: the caller's <c>traceparent</c>, or the trace this request
    /// started; also on its log lines through TelemetryExtensions' ActivityTrackingOptions, and on its spans).
    /// </summary>
    private static void AddCorrelation(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Extensions.TryAdd("requestId", context.HttpContext.TraceIdentifier);

        // The trace id alone, as the log lines carry it (ASP.NET Core's default here is the whole activity id).
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } activity)
        {
            problem.Extensions["traceId"] = activity.TraceId.ToHexString();
        }
    }

    /// <summary>410 <c>purged</c>: a retention pass removed the entry's content; <paramref name="purgeRecord"/> names the record that did.</summary>
    public static ProblemHttpResult Purged(string detail, object purgeRecord)
    {
        var problem = new ProblemDetails { Status = 410, Type = TypeBase + "purged", Title = "The entry's content was purged by retention", Detail = detail };
        problem.Extensions["purgeRecord"] = purgeRecord;
        return TypedResults.Problem(problem);
    }

    public static ProblemHttpResult Create(int status, string slug, string title, string detail, object? errors = null)
    {
        var problem = new ProblemDetails { Status = status, Type = TypeBase + slug, Title = title, Detail = detail };
        if (errors is not null)
        {
            problem.Extensions["errors"] = errors;
        }

        return TypedResults.Problem(problem);
    }
}
