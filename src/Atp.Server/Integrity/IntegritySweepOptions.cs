using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Integrity;

/// <summary>The background integrity sweep (section <c>Atp:Integrity:Sweep</c>).</summary>
public sealed class IntegritySweepOptions
{
    public const string Section = "Atp:Integrity:Sweep";

    /// <summary>Whether the sweep runs at all.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Entries re-verified per second, at most. Low by default: the sweep is a slow, steady background read that must
    /// not compete with ingest (200/s walks a million-entry log in about 1.4 hours).
    /// </summary>
    [Range(1, 10_000_000)]
    public int EntriesPerSecond { get; set; } = 200;

    /// <summary>Rest between the end of one pass over every log and the start of the next.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan PauseBetweenPasses { get; set; } = TimeSpan.FromMinutes(10);
}
