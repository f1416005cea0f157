using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Holds;

/// <summary>Limits of legal holds (<c>Atp:Holds</c>).</summary>
internal sealed class HoldOptions
{
    public const string Section = "Atp:Holds";

    /// <summary>
    /// Active holds one tenant may have: each is checked on every erasure of the tenant (a search per hold that names
    /// no party), so the count bounds that work.
    /// </summary>
    [Range(1, 100_000)]
    public int MaxActiveHoldsPerTenant { get; set; } = 1_000;
}
