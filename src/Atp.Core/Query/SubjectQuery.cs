using Atp.Core.Storage;

namespace Atp.Core.Query;

/// <summary>
/// Every projected event of one tenant about one data subject: its actor id is <see cref="Subject"/>, or one of its
/// targets' ids is. Each event once, oldest first in (occurredAt, index) order; <see cref="SnapshotSize"/> pins the
/// page set to a log prefix as in <see cref="EventQuery"/>.
/// </summary>
public sealed record SubjectQuery(string TenantId, string Subject)
{
    /// <summary>The longest subject id a query takes (the erasure request's bound).</summary>
    public const int MaxSubjectLength = 256;

    public int Limit { get; init; } = 100;

    /// <summary>Only entries with index below this are considered.</summary>
    public ulong SnapshotSize { get; init; } = ulong.MaxValue;

    /// <summary>Continue after this position (exclusive), ascending.</summary>
    public QueryPosition? After { get; init; }
}

/// <summary>One page about a subject, and whether more follow.</summary>
public sealed record SubjectPage(IReadOnlyList<SubjectHit> Hits, bool HasMore);

/// <summary>
/// An event the read models list about the subject. <see cref="Entry"/> is null when the log no longer holds the
/// entry's content (purged by retention after it was indexed): the position still moves the cursor on.
/// </summary>
public sealed record SubjectHit(QueryPosition Position, LogEntry? Entry);
