using System.Collections.Concurrent;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Holds;
using Atp.Core.Ingestion;
using Atp.Core.Policy;
using Atp.Core.Storage;

namespace Atp.Core.Retention;

/// <summary>
/// One retention pass over a tenant's log (docs/operations.md, "Retention"): walks the entries from the oldest one
/// that still has content, and removes the content of those older than their type's retention that no active legal
/// hold covers, each batch in the transaction that appends its purge record to the same log. Leaf hashes and nodes
/// stay, so every checkpoint and proof stays valid.
/// </summary>
public sealed class RetentionPass(ILogStore log, ITenantStore tenants, IngestionService ingestion, TimeProvider clock, ILegalHoldStore? holds) : IDisposable
{
    /// <summary>The event type of a purge record.</summary>
    public const string PurgeRecordType = "atp.retention.purge.v1";

    /// <summary>The action of a purge record.</summary>
    public const string PurgeAction = "log.purge";

    private const int PageSize = 1000;

    // Per tenant, the lowest index that may still have content: everything below it was purged (a purge is never
    // undone), so a pass starts there. Kept in memory: after a restart the first pass walks from 0 once.
    private readonly ConcurrentDictionary<string, ulong> _firstWithContent = new(StringComparer.Ordinal);

    // One pass at a time in this process: two passes over one tenant would race for the same entries (the store
    // refuses the second record's purge; see AppendRequest.Purge), and passes are background work anyway.
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);

    /// <summary>Entries one purge record may examine (and so purge) at most: bounds how long one append holds the tenant's log.</summary>
    public int MaxEntriesPerRecord { get; init; } = 10_000;

    /// <summary>
    /// Runs one pass for the tenant; null when its active policy has no retention. <paramref name="actor"/> is who
    /// the purge records name (the admin who asked, or the cell's retention service).
    /// </summary>
    public async Task<RetentionOutcome?> RunAsync(string tenantId, Party actor, Submitter? submittedBy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RunOnceAsync(tenantId, actor, submittedBy, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task<RetentionOutcome?> RunOnceAsync(string tenantId, Party actor, Submitter? submittedBy, CancellationToken cancellationToken)
    {
        if (await tenants.ListPolicyVersionsAsync(tenantId, 1, cancellationToken).ConfigureAwait(false) is not [{ Document.Retention: { } retention } version]
            || retention.ShortestDays is not { } shortest)
        {
            return null;
        }

        var now = clock.GetUtcNow();
        var activeHolds = holds is null
            ? []
            : (await holds.ListHoldsAsync(tenantId, includeReleased: false, cancellationToken).ConfigureAwait(false)).Where(h => h.IsActive).ToArray();

        // Nothing received after this can have expired under any type's retention: the walk ends at the first such entry
        // (entries are in commit order, and receive times follow it but for clock steps, which only delay a purge).
        var newestExpirable = now.AddDays(-shortest);
        var next = _firstWithContent.GetValueOrDefault(tenantId);
        var firstWithContent = (ulong?)null;
        var records = new List<PurgeRecord>();
        var batch = new Batch(next);
        var retainedByHold = 0;
        var done = false;
        while (!done)
        {
            var page = await log.ListEntriesAsync(tenantId, next, PageSize, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var entry in page)
            {
                if (entry.ReceivedAt > newestExpirable)
                {
                    firstWithContent ??= entry.Index;
                    done = true;
                    break;
                }

                if (batch.Examined == MaxEntriesPerRecord)
                {
                    if (await AppendAsync(tenantId, batch, version.Version, actor, submittedBy, cancellationToken).ConfigureAwait(false) is { } record)
                    {
                        records.Add(record);
                    }

                    batch = new Batch(entry.Index);
                }

                batch.Examine(entry.Index);
                if (entry.PurgedBy is not null)
                {
                    continue;
                }

                switch (Decide(entry, retention, activeHolds, now))
                {
                    case Decision.Purge:
                        batch.Purge(entry);
                        break;
                    case Decision.Never:
                        // Never purged, so no later pass needs to see it again: it does not hold the starting point back.
                        break;
                    case Decision.Held:
                        batch.RetainedByHold++;
                        retainedByHold++;
                        firstWithContent ??= entry.Index;
                        break;
                    default:
                        firstWithContent ??= entry.Index;
                        break;
                }
            }

            next = page[^1].Index + 1;
        }

        if (await AppendAsync(tenantId, batch, version.Version, actor, submittedBy, cancellationToken).ConfigureAwait(false) is { } last)
        {
            records.Add(last);
        }

        _firstWithContent[tenantId] = firstWithContent ?? next;
        return new RetentionOutcome(version.Version, records, records.Sum(r => r.Count), retainedByHold);
    }

    public void Dispose() => _oneAtATime.Dispose();

    private static Decision Decide(LogEntry entry, RetentionPolicy retention, LegalHold[] activeHolds, DateTimeOffset now)
    {
        using var leaf = JsonDocument.Parse(entry.Leaf);
        var root = leaf.RootElement;
        var type = root.GetProperty("type").GetString()!;

        // ATP's own records (purge records, erasure tombstones) explain what happened to the log: never purged.
        if (type.StartsWith("atp.", StringComparison.Ordinal))
        {
            return Decision.Never;
        }

        if (retention.DaysFor(type) is not { } days || entry.ReceivedAt > now.AddDays(-days))
        {
            return Decision.Keep;
        }

        if (activeHolds.Length > 0)
        {
            var actorId = root.GetProperty("actor").GetProperty("id").GetString()!;
            var targetIds = root.TryGetProperty("targets", out var targets)
                ? targets.EnumerateArray().Select(t => t.GetProperty("id").GetString()!).ToArray()
                : [];
            var occurredAt = root.GetProperty("occurredAt").GetDateTimeOffset();
            if (activeHolds.Any(h => h.Scope.Covers(type, actorId, targetIds, occurredAt)))
            {
                return Decision.Held;
            }
        }

        return Decision.Purge;
    }

    private async Task<PurgeRecord?> AppendAsync(string tenantId, Batch batch, int policyVersion, Party actor, Submitter? submittedBy, CancellationToken cancellationToken)
    {
        if (batch.Indexes.Count == 0)
        {
            return null;
        }

        var data = JsonSerializer.SerializeToElement(
            new PurgeRecordData(batch.From, batch.To, batch.Indexes.Count, policyVersion, batch.RetainedByHold), RetentionJson.Default.PurgeRecordData);
        var draft = new EventDraft(
            null, PurgeRecordType, clock.GetUtcNow(), actor, PurgeAction, [new Party("log", tenantId, null)], EventOutcome.Success, null, data);
        var outcome = await ingestion.AppendPurgeAsync(tenantId, draft, new EntryPurge(batch.Indexes, batch.Bytes), submittedBy, cancellationToken).ConfigureAwait(false);
        return outcome is Appended { Replayed: false, Receipts: [var receipt] }
            ? new PurgeRecord(receipt.Index, receipt.Id, batch.From, batch.To, batch.Indexes.Count, batch.RetainedByHold)
            : throw new InvalidOperationException($"A purge record was not appended: {outcome.GetType().Name}.");
    }

    private enum Decision
    {
        Never,
        Keep,
        Held,
        Purge,
    }

    // The entries one purge record examines: [From, To], those it purges and the bytes of their leaves.
    private sealed class Batch(ulong from)
    {
        public ulong From { get; } = from;

        public ulong To { get; private set; } = from;

        public int Examined { get; private set; }

        public List<ulong> Indexes { get; } = [];

        public long Bytes { get; private set; }

        public int RetainedByHold { get; set; }

        public void Examine(ulong index)
        {
            To = index;
            Examined++;
        }

        public void Purge(LogEntry entry)
        {
            Indexes.Add(entry.Index);
            Bytes += entry.Leaf.Length;
        }
    }
}

/// <summary>What a retention pass did: its purge records and the totals.</summary>
/// <param name="PolicyVersion">The policy version whose retention applied.</param>
/// <param name="Records">The purge records appended, in log order.</param>
/// <param name="Purged">Entries whose content was removed.</param>
/// <param name="RetainedByHold">Expired entries kept because an active legal hold covers them.</param>
public sealed record RetentionOutcome(int PolicyVersion, IReadOnlyList<PurgeRecord> Records, int Purged, int RetainedByHold);

/// <summary>One purge record appended: where it is and what it covers.</summary>
public sealed record PurgeRecord(ulong Index, Guid EventId, ulong From, ulong To, int Count, int RetainedByHold);

/// <summary>The data of a purge record's leaf.</summary>
/// <param name="From">The first index of the range examined.</param>
/// <param name="To">The last index of the range examined.</param>
/// <param name="Count">Entries of the range whose content this record removed.</param>
/// <param name="PolicyVersion">The policy version whose retention applied.</param>
/// <param name="RetainedByHold">Expired entries of the range kept because an active legal hold covers them.</param>
public sealed record PurgeRecordData(ulong From, ulong To, int Count, int PolicyVersion, int RetainedByHold);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(PurgeRecordData))]
internal sealed partial class RetentionJson : System.Text.Json.Serialization.JsonSerializerContext;
