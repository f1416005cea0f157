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

    public static ProblemHttpResult Unavailable(string detail) => Create(503, "unavailable", "The service cannot complete the request now", detail);

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
