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

/// <summary>
/// How far a tenant's read models have caught up with its log: every entry below <see cref="ProjectedSize"/> has been
/// handled (projected, or quarantined as a dead letter), none at or above it is counted.
/// </summary>
public sealed record ProjectionStatus(ulong ProjectedSize, ulong TreeSize)
{
    /// <summary>Entries of the tenant below <see cref="ProjectedSize"/> that could not be projected (not searchable).</summary>
    public long DeadLetters { get; init; }

    /// <summary>True while the read models are being rebuilt after damage; searches answer "rebuilding" meanwhile.</summary>
    public bool Rebuilding { get; init; }
}

/// <summary>
/// An entry the projector could not project: kept aside so that it never stalls the rest of the log. Error says why
/// in words that carry none of the entry's content; Attempts counts the tries, FirstSeen and LastSeen bound them.
/// </summary>
public sealed record DeadLetter(string TenantId, ulong Index, string Error, DateTimeOffset FirstSeen, DateTimeOffset LastSeen, int Attempts);

/// <summary>Thrown by a search while the read models are being rebuilt after damage: ask again later.</summary>
public sealed class ProjectionRebuildingException : Exception
{
    public ProjectionRebuildingException()
        : base("The read models are being rebuilt from the log.")
    {
    }

    public ProjectionRebuildingException(string message)
        : base(message)
    {
    }

    public ProjectionRebuildingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The read models: projected from the outbox, rebuildable from the log alone.</summary>
public interface IEventQueryStore
{
    /// <summary>Runs a search; only projected entries are visible.</summary>
    Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// The projected events about a data subject (as actor or as any target), each once, ascending; an entry the log
    /// no longer holds comes without its <see cref="SubjectHit.Entry"/> rather than failing the page.
    /// </summary>
    Task<SubjectPage> ListSubjectEventsAsync(SubjectQuery query, CancellationToken cancellationToken);

    /// <summary>Projects up to <paramref name="maxEntries"/> pending entries from the outbox; returns how many entries it projected.</summary>
    Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken);

    /// <summary>Drops the tenant's read models and projects its whole log again; returns the entries projected.</summary>
    Task<ulong> RebuildProjectionsAsync(string tenantId, CancellationToken cancellationToken);

    Task<ProjectionStatus?> GetProjectionStatusAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>When the oldest entry still waiting in the outbox was received; null when nothing waits.</summary>
    Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken);

    /// <summary>The tenant's dead letters, lowest index first.</summary>
    Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string tenantId, int limit, CancellationToken cancellationToken);

    /// <summary>Tries to project the tenant's dead letters again; those that now project leave the table. Returns how many did.</summary>
    Task<int> RetryDeadLettersAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>Dead letters in the whole cell (a count only, for the metric and readiness).</summary>
    Task<long> CountDeadLettersAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Log entries waiting in the outbox to be projected, in the whole cell (a count only, for the metric), summed over
    /// at most the <paramref name="maxRows"/> oldest waiting outbox rows so that the count stays cheap on a long
    /// backlog: beyond that many rows it is a lower bound.
    /// </summary>
    Task<long> CountOutboxBacklogAsync(int maxRows, CancellationToken cancellationToken);

    /// <summary>True while the read models are being rebuilt after damage was detected (searches throw <see cref="ProjectionRebuildingException"/>).</summary>
    bool IsRebuilding => false;

    /// <summary>The tenants whose read models hold projected rows (the read-model sweep walks these).</summary>
    /// <remarks>By default none: an engine whose read models are protected otherwise has nothing for the sweep to check.</remarks>
    Task<IReadOnlyList<string>> ListProjectedTenantsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>
    /// Compares up to <paramref name="maxRows"/> of the tenant's projected entries from index <paramref name="fromIndex"/> on with
    /// the log: every stored searchable value, and every index's entry for it. A mismatch is reported as damage (the read
    /// models are rebuilt, as for any damage found). By default there is nothing to check: on PostgreSQL the read models
    /// are covered by PostgreSQL's own data checksums and the rebuild endpoint.
    /// </summary>
    Task<ReadModelVerification> VerifyProjectedRowsAsync(string tenantId, ulong fromIndex, int maxRows, CancellationToken cancellationToken) =>
        Task.FromResult(new ReadModelVerification(fromIndex, 0, Damaged: false, Done: true));
}

/// <summary>One step of the read-model sweep: where the next step starts, how many entries were compared, whether damage was found, and whether the tenant's projected prefix is done.</summary>
public sealed record ReadModelVerification(ulong NextIndex, int Checked, bool Damaged, bool Done);
