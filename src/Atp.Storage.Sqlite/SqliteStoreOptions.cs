using System.ComponentModel.DataAnnotations;

namespace Atp.Storage.Sqlite;

/// <summary>Settings of the embedded engine (section <c>Atp</c>, keys <c>DataDirectory</c> and <c>Sqlite:*</c>).</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>Directory holding <c>atp.db</c> and its WAL.</summary>
    [Required]
    public string DataDirectory { get; set; } = "./atp-data";

    /// <summary>Most entries one group commit writes; bounds transaction size and commit latency.</summary>
    [Range(1, 1_000_000)]
    public int MaxEntriesPerCommit { get; set; } = 20_000;

    /// <summary>Append requests waiting for the sequencer before callers are slowed down.</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>The database file.</summary>
    public string DatabasePath => Path.Combine(Path.GetFullPath(DataDirectory), "atp.db");
}
