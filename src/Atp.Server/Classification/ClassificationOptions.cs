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
    /// Seal the envelope's personal fields (actor name, IP, user agent) at ingest. Off by default: no read path returns
    /// the clear values yet (the <c>pii:read</c> scope is planned), so turning it on makes them readable by no API.
    /// </summary>
    public bool SealEnvelopeFields { get; set; }
}
