using System.ComponentModel.DataAnnotations;

namespace Atp.Storage.Sqlite;

/// <summary>Settings of the embedded engine (section <c>Atp</c>, keys <c>DataDirectory</c> and <c>Sqlite:*</c>).</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>Directory holding <c>atp.db</c> (the logs), <c>atp-read.db</c> (the read models) and their WALs.</summary>
    [Required]
    public string DataDirectory { get; set; } = "./atp-data";

    /// <summary>Most entries one group commit writes; bounds transaction size and commit latency.</summary>
    [Range(1, 1_000_000)]
    public int MaxEntriesPerCommit { get; set; } = 20_000;

    /// <summary>Append requests waiting for the sequencer before callers are slowed down.</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>
    /// Bytes held back in <c>atp-space-reserve</c> so that the store can open its databases (and serve reads) on a disk
    /// found full at start; 0 keeps no reserve. Opening needs little (the WAL index is 32 KiB per 4,096 WAL frames).
    /// </summary>
    [Range(0, long.MaxValue)]
    public long SpaceReserveBytes { get; set; } = 4L << 20;

    /// <summary>Free bytes the data directory needs (besides a missing reserve) before appends resume after its disk was full.</summary>
    [Range(0, long.MaxValue)]
    public long MinimumFreeBytes { get; set; } = 16L << 20;

    /// <summary>The database file of the logs, tenants and keys.</summary>
    public string DatabasePath => Path.Combine(Path.GetFullPath(DataDirectory), "atp.db");

    /// <summary>The database file of the read models (derived from the logs; rebuilt when missing).</summary>
    public string ReadModelPath => Path.Combine(Path.GetFullPath(DataDirectory), "atp-read.db");
}
