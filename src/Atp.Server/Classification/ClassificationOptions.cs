using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Classification;

/// <summary>Classified fields (<c>Atp:Classification</c>, docs/classification.md).</summary>
public sealed class ClassificationOptions
{
    public const string Section = "Atp:Classification";

    /// <summary>How many unwrapped data keys a node keeps in memory (one per active data subject); 32 bytes each plus bookkeeping.</summary>
    [Range(1, 10_000_000)]
    public int DataKeyCacheSize { get; set; } = 100_000;

    /// <summary>
    /// Seal the envelope's personal fields (actor name, IP, user agent) at ingest; callers holding <c>pii:read</c> see
    /// them in clear. Off by default. The data fields a tenant's policy classifies are sealed either way.
    /// </summary>
    public bool SealEnvelopeFields { get; set; }
}
