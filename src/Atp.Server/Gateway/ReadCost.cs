using System.Globalization;

namespace Atp.Server.Gateway;

/// <summary>
/// What a read costs against the tenant's read-cost budget, as endpoint metadata (a read without it costs 1). The
/// cost follows the work: a search page costs 1 + limit/100, and proofs multiply it by ten, because each hit then
/// also reads its inclusion path, about log2(tree size) stored nodes, where the plain page reads one leaf (the
/// fairness benchmark in docs/performance.md measured the factor 4 as far too cheap); a single proof costs 2.
/// Known from the request line, so a refused read does no work.
/// </summary>
internal sealed record ReadCost(Func<HttpRequest, int> Of)
{
    /// <summary>A verified search page costs this many times an unverified one.</summary>
    public const int ProofFactor = 10;

    /// <summary>The most one read can cost: a verified search page of the largest limit.</summary>
    public const int Largest = (1 + (Atp.Server.Query.SearchRequest.MaxLimit / 100)) * ProofFactor;

    public static ReadCost Plain { get; } = new(_ => 1);

    public static ReadCost Proof { get; } = new(_ => 2);

    /// <summary>Get-by-id: 1, or 2 with its inclusion proof.</summary>
    public static ReadCost Event { get; } = new(r => IsTrue(r, "verify") || IsTrue(r, "proof") ? 2 : 1);

    /// <summary>A search page: 1 + limit/100 (limit 100 by default), × <see cref="ProofFactor"/> with verify=true.</summary>
    public static ReadCost Search { get; } = new(r => IsTrue(r, "verify") ? PageCost(r) * ProofFactor : PageCost(r));

    /// <summary>A page of a data subject's events: every item comes with its proof, so priced as a verified search page.</summary>
    public static ReadCost SubjectEvents { get; } = new(r => PageCost(r) * ProofFactor);

    public static int For(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<ReadCost>() is { } cost ? cost.Of(context.Request) : 1;

    // 1 + limit/100, limit 100 by default.
    private static int PageCost(HttpRequest request)
    {
        var limit = int.TryParse(request.Query["limit"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var l)
            ? Math.Clamp(l, 1, Atp.Server.Query.SearchRequest.MaxLimit)
            : 100;
        return 1 + (limit / 100);
    }

    private static bool IsTrue(HttpRequest request, string name) =>
        string.Equals(request.Query[name].ToString(), "true", StringComparison.OrdinalIgnoreCase);
}

internal static class ReadCostExtensions
{
    /// <summary>Sets what the endpoint's reads cost against the tenant's read-cost budget.</summary>
    public static TBuilder WithReadCost<TBuilder>(this TBuilder builder, ReadCost cost)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(cost);
}
