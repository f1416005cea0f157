using System.Text.Json;
using Atp.Core.Storage;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atp.Server.Retention;

/// <summary>The answer for a read of an entry whose content a retention pass removed: 410 naming the purge record.</summary>
internal static class PurgedEntries
{
    /// <summary>410 <c>purged</c> with the purge record (its index, event id, range, count, policy version and time).</summary>
    public static async Task<ProblemHttpResult> ProblemAsync(ILogStore store, string tenantId, LogEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(entry);
        var recordIndex = entry.PurgedBy ?? throw new ArgumentException("The entry is not purged.", nameof(entry));
        var record = await store.GetEntryAsync(tenantId, recordIndex, cancellationToken).ConfigureAwait(false);
        var described = record is null ? null : Describe(record);
        var detail = $"Entry {entry.Index} is past its retention; its content was removed by purge record {recordIndex}. Its leaf hash "
            + $"{entry.LeafHash.ToBase64()} stays in the log, so proofs and checkpoints still verify.";
        return Problem.Purged(detail, (object?)described ?? new PurgeRecordDto(recordIndex, null, null, null, null, null, null));
    }

    // The record's own leaf (never purged itself) says what it covered.
    private static PurgeRecordDto? Describe(LogEntry record)
    {
        try
        {
            using var leaf = JsonDocument.Parse(record.Leaf);
            var data = leaf.RootElement.GetProperty("data");
            return new PurgeRecordDto(
                record.Index,
                record.EventId,
                data.GetProperty("from").GetUInt64(),
                data.GetProperty("to").GetUInt64(),
                data.GetProperty("count").GetInt32(),
                data.GetProperty("policyVersion").GetInt32(),
                record.ReceivedAt);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}

/// <summary>The purge record that removed an entry's content (extension member <c>purgeRecord</c> of a 410 <c>purged</c>).</summary>
/// <param name="Index">The record's index in the tenant's log.</param>
/// <param name="Id">The record's event id.</param>
/// <param name="From">First index of the range the record examined.</param>
/// <param name="To">Last index of that range.</param>
/// <param name="Count">Entries of the range it purged.</param>
/// <param name="PolicyVersion">The policy version whose retention applied.</param>
/// <param name="PurgedAt">When it was appended (its receive time).</param>
internal sealed record PurgeRecordDto(ulong Index, Guid? Id, ulong? From, ulong? To, int? Count, int? PolicyVersion, DateTimeOffset? PurgedAt);
