using System.ComponentModel.DataAnnotations;

namespace Atp.Storage.Postgres;

/// <summary>Settings of the scale-out engine (<c>ConnectionStrings:Atp</c>, <c>ConnectionStrings:AtpAdmin</c>, <c>Atp:Postgres:*</c>).</summary>
public sealed class PostgresStoreOptions
{
    /// <summary>The application role: owns nothing, has no BYPASSRLS; every query runs under row-level security.</summary>
    [Required]
    public string ConnectionString { get; set; } = "";

    /// <summary>The owner role, optional: when given, the store applies migrations with it before opening.</summary>
    public string? AdminConnectionString { get; set; }

    /// <summary>
    /// Writer loops (each with its own connection and group commit) per node. A tenant's appends always go to the same
    /// writer (tenants are dealt to writers in turn as they first append); more writers let the database insert for
    /// different tenants on several cores at once. On the 2-core test machine 2 measured best: 4 used more CPU per
    /// event (smaller groups, a WAL flush each) for less throughput (docs/performance.md, round 6).
    /// </summary>
    [Range(1, 64)]
    public int Writers { get; set; } = 2;

    /// <summary>Most entries one group commit writes; bounds transaction size and commit latency.</summary>
    [Range(1, 1_000_000)]
    public int MaxEntriesPerCommit { get; set; } = 20_000;

    /// <summary>
    /// Most append requests one group commit takes. Each request runs in its own savepoint (a subtransaction);
    /// PostgreSQL caches 64 subtransactions per backend, and past that every snapshot of every session gets slower.
    /// </summary>
    [Range(1, 64)]
    public int MaxRequestsPerCommit { get; set; } = 60;

    /// <summary>
    /// Bytes of recently committed leaves this node keeps for its own projector, which then need not read them back
    /// from the log (0: none; the server sets 0 on a node with <c>Atp:Query:Projector=false</c>).
    /// </summary>
    [Range(0, 16L * 1024 * 1024 * 1024)]
    public long RecentLeavesBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Append requests waiting for the sequencer before callers are slowed down.</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;
}
