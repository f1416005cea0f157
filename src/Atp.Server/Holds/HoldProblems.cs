using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Atp.Server.Holds;

/// <summary>The problem an erasure answers while legal holds cover its subject.</summary>
internal static class HoldProblems
{
    /// <summary>409 <c>legal-hold</c>, naming the holds in the <c>holds</c> member so the caller knows what to release.</summary>
    public static ProblemHttpResult LegalHold(IReadOnlyList<string> holdIds)
    {
        var problem = new ProblemDetails
        {
            Status = StatusCodes.Status409Conflict,
            Type = "https://atp.dev/problems/legal-hold",
            Title = "A legal hold covers this subject",
            Detail = $"The tenant's active legal hold{(holdIds.Count == 1 ? "" : "s")} {string.Join(", ", holdIds)} may cover events about this subject; nothing was erased. Release the hold (POST …/holds/{{id}}/release) when it no longer applies, then erase again.",
        };
        problem.Extensions["holds"] = holdIds;
        return TypedResults.Problem(problem);
    }
}
