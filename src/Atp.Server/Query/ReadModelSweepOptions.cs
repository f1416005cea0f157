using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Query;

/// <summary>The background read-model sweep (section <c>Atp:Query:ReadModelSweep</c>).</summary>
public sealed class ReadModelSweepOptions
{
    public const string Section = "Atp:Query:ReadModelSweep";

    /// <summary>Whether the sweep runs at all (it has work only on the embedded engine).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Projected entries compared with the log per second, at most. Each costs a few index lookups in <c>atp-read.db</c>
    /// and one log read: 500/s walks a million-entry log in about 35 minutes.
    /// </summary>
    [Range(1, 1_000_000)]
    public int RowsPerSecond { get; set; } = 500;

    /// <summary>Rest between the end of one pass over every tenant and the start of the next.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan PauseBetweenPasses { get; set; } = TimeSpan.FromMinutes(1);
}
