using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Erasure;

/// <summary>Limits of erasure requests awaiting approval (<c>Atp:Erasure</c>; docs/classification.md, "Erasure").</summary>
internal sealed class ErasureOptions
{
    public const string Section = "Atp:Erasure";

    /// <summary>
    /// Pending requests one tenant may have: each pending request keeps its subject id in the store until it is
    /// closed, so the count bounds what is kept (and what a GET lists).
    /// </summary>
    [Range(1, 1_000)]
    public int MaxPendingRequestsPerTenant { get; set; } = 1_000;
}
