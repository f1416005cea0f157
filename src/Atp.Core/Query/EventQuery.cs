using Atp.Core.Storage;

namespace Atp.Core.Query;

/// <summary>
/// A tenant-scoped search over the projected events. Results are ordered by (occurredAt, index), newest first
/// unless <see cref="Ascending"/>; <see cref="SnapshotSize"/> pins the page set to the log prefix seen by the first
/// page, so events arriving meanwhile neither appear in nor shift later pages.
/// </summary>
public sealed record EventQuery(string TenantId)
{
    /// <summary>occurredAt ≥ From (inclusive).</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>occurredAt &lt; To (exclusive).</summary>
    public DateTimeOffset? To { get; init; }

    public string? ActorId { get; init; }

    public string? ActorType { get; init; }

    /// <summary>An exact action, or with <see cref="ActionIsPrefix"/> the prefix before the trailing '*'.</summary>
    public string? Action { get; init; }

    public bool ActionIsPrefix { get; init; }

    /// <summary>Matches when any of the event's targets has this type (and <see cref="TargetId"/> when given).</summary>
    public string? TargetType { get; init; }

    public string? TargetId { get; init; }

    public string? Outcome { get; init; }

    /// <summary>Full-text terms over actor and target names and the action (all terms must match).</summary>
    public string? Text { get; init; }

    public bool Ascending { get; init; }

    public int Limit { get; init; } = 100;

    /// <summary>Only entries with index below this are considered.</summary>
    public ulong SnapshotSize { get; init; } = ulong.MaxValue;

    /// <summary>Continue after this position (exclusive), in the query's order.</summary>
    public QueryPosition? After { get; init; }
}

/// <summary>A position in (occurredAt, index) order: where a page ended.</summary>
public readonly record struct QueryPosition(long OccurredAtTicks, ulong Index);

/// <summary>One page of results: the entries in order, and whether more follow.</summary>
public sealed record QueryPage(IReadOnlyList<QueryHit> Hits, bool HasMore);

/// <summary>A matching entry with its position for the cursor.</summary>
public sealed record QueryHit(LogEntry Entry, QueryPosition Position);

/// <summary>How far a tenant's read models have caught up with its log.</summary>
public sealed record ProjectionStatus(ulong ProjectedSize, ulong TreeSize);

/// <summary>The read models: projected from the outbox, rebuildable from the log alone.</summary>
public interface IEventQueryStore
{
    /// <summary>Runs a search; only projected entries are visible.</summary>
    Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken);

    /// <summary>Projects up to <paramref name="maxEntries"/> pending entries from the outbox; returns how many entries it projected.</summary>
    Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken);

    /// <summary>Drops the tenant's read models and projects its whole log again; returns the entries projected.</summary>
    Task<ulong> RebuildProjectionsAsync(string tenantId, CancellationToken cancellationToken);

    Task<ProjectionStatus?> GetProjectionStatusAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>When the oldest entry still waiting in the outbox was received; null when nothing waits.</summary>
    Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken);
}
