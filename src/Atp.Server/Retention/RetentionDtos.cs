using Atp.Core.Retention;

namespace Atp.Server.Retention;

/// <summary>What one retention pass of a tenant did.</summary>
/// <param name="PolicyVersion">The policy version whose retention applied.</param>
/// <param name="Purged">Entries whose content was removed.</param>
/// <param name="RetainedByHold">Expired entries kept because an active legal hold covers them.</param>
/// <param name="PurgeRecords">The purge records appended to the tenant's log, in log order.</param>
/// <param name="FilesScrubbed">
/// Whether the old leaf bytes were also removed from the store's write-ahead log right after (the embedded engine; false
/// when readers kept it busy, or on PostgreSQL, whose dead row versions stay until VACUUM).
/// </param>
internal sealed record RetentionRunResponse(int PolicyVersion, int Purged, int RetainedByHold, IReadOnlyList<PurgeRecordSummary> PurgeRecords, bool FilesScrubbed)
{
    public static RetentionRunResponse Of(RetentionOutcome outcome, bool filesScrubbed) =>
        new(outcome.PolicyVersion, outcome.Purged, outcome.RetainedByHold, [.. outcome.Records.Select(r => new PurgeRecordSummary(r.Index, r.EventId, r.From, r.To, r.Count, r.RetainedByHold))], filesScrubbed);
}

/// <summary>One purge record: its index and event id, the index range it examined, how many it purged and kept by hold.</summary>
internal sealed record PurgeRecordSummary(ulong Index, Guid Id, ulong From, ulong To, int Count, int RetainedByHold);
