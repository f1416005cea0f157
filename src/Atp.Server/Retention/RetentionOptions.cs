using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Retention;

/// <summary>The background retention service (section <c>Atp:Retention</c>; docs/operations.md, "Retention").</summary>
public sealed class RetentionOptions
{
    public const string Section = "Atp:Retention";

    /// <summary>Whether the service runs passes on its own (a tenant admin can still run one with <c>POST …/retention/run</c>).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Time between the end of one pass over every tenant and the start of the next.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Entries one purge record examines at most: bounds how long one purge holds the tenant's appends back.</summary>
    [Range(1, 100_000)]
    public int EntriesPerRecord { get; set; } = 10_000;
}
