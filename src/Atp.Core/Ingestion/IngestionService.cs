using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Core.Ingestion;

/// <summary>
/// validate → assign id (UUIDv7) and receive time → canonical leaf bytes → append through the store's sequencer →
/// receipts. A request with any invalid event stores nothing.
/// </summary>
public sealed class IngestionService(ILogStore store, TimeProvider clock, FieldSealer? sealer)
{
    /// <summary>Ingestion that seals no field (tools and benchmarks that write logs directly).</summary>
    public IngestionService(ILogStore store, TimeProvider clock)
        : this(store, clock, sealer: null)
    {
    }

    /// <summary>Appends already-validated drafts as one all-or-nothing unit.</summary>
    public Task<AppendOutcome> AppendAsync(string tenantId, IReadOnlyList<EventDraft> drafts, IdempotencyClaim? idempotency, CancellationToken cancellationToken) =>
        AppendAsync(tenantId, drafts, idempotency, submittedBy: null, cancellationToken);

    /// <summary>Appends already-validated drafts as one all-or-nothing unit, recording in each leaf the credential that submitted them.</summary>
    public Task<AppendOutcome> AppendAsync(string tenantId, IReadOnlyList<EventDraft> drafts, IdempotencyClaim? idempotency, Submitter? submittedBy, CancellationToken cancellationToken) =>
        AppendAsync(tenantId, drafts, idempotency, submittedBy, StorageQuota.Unlimited, cancellationToken);

    /// <summary>
    /// As above, refusing the whole request with <see cref="QuotaExceeded"/> when storing it would take the tenant past
    /// <paramref name="quota"/>. The check reads the committed usage before the append, so requests in flight at the
    /// same time may together overshoot by at most what they carry.
    /// </summary>
    public Task<AppendOutcome> AppendAsync(string tenantId, IReadOnlyList<EventDraft> drafts, IdempotencyClaim? idempotency, Submitter? submittedBy, StorageQuota quota, CancellationToken cancellationToken) =>
        Append(tenantId, drafts, idempotency, submittedBy, quota, [], [], null, cancellationToken);

    /// <summary>
    /// As above, with every classified field of a tenant's event sealed first (<see cref="FieldSealer"/>): the leaf
    /// commits to the tokens, and a data key created for them is stored in the append's own transaction.
    /// </summary>
    public Task<AppendOutcome> AppendClassifiedAsync(string tenantId, IReadOnlyList<EventDraft> drafts, IdempotencyClaim? idempotency, Submitter? submittedBy, StorageQuota quota, CancellationToken cancellationToken) =>
        AppendClassifiedAsync(tenantId, drafts, idempotency, submittedBy, quota, SealingPlan.EnvelopeOnly, cancellationToken);

    /// <summary>As above, sealing what <paramref name="plan"/> names (the cell's envelope setting and the tenant's classified data fields).</summary>
    public async Task<AppendOutcome> AppendClassifiedAsync(string tenantId, IReadOnlyList<EventDraft> drafts, IdempotencyClaim? idempotency, Submitter? submittedBy, StorageQuota quota, SealingPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (sealer is null || plan.IsEmpty)
        {
            return await AppendAsync(tenantId, drafts, idempotency, submittedBy, quota, cancellationToken).ConfigureAwait(false);
        }

        var sealedDrafts = await sealer.SealAsync(tenantId, drafts, plan, cancellationToken).ConfigureAwait(false);
        if (sealedDrafts.NewKeys.Count == 0)
        {
            return await Append(tenantId, sealedDrafts.Drafts, idempotency, submittedBy, quota, [], [], null, cancellationToken).ConfigureAwait(false);
        }

        AppendOutcome outcome;
        try
        {
            outcome = await Append(tenantId, sealedDrafts.Drafts, idempotency, submittedBy, quota, sealedDrafts.NewKeys, [], null, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Forgotten, so the next use asks the store again (another node may have stored its own key for the subject).
            sealer.Ring.Abandon(tenantId, sealedDrafts.NewKeys);
            throw;
        }

        if (outcome is Appended { Replayed: false })
        {
            sealer.Ring.Stored(tenantId, sealedDrafts.NewKeys);
        }
        else if (outcome is not Appended)
        {
            sealer.Ring.Abandon(tenantId, sealedDrafts.NewKeys);
        }

        return outcome;
    }

    /// <summary>
    /// An erasure: appends its tombstone and destroys the subject's data key in the same transaction, so a crash leaves
    /// either both or neither. The tombstone is not sealed and not held to the storage quota (it erases). The ring
    /// forgets the key before and after, so no event sealed here meanwhile uses the key being destroyed.
    /// </summary>
    public async Task<AppendOutcome> AppendErasureAsync(string tenantId, EventDraft tombstone, string subject, string keyId, Submitter? submittedBy, CancellationToken cancellationToken)
    {
        sealer?.Ring.Forget(tenantId, subject, keyId);
        var outcome = await Append(tenantId, [tombstone], idempotency: null, submittedBy, StorageQuota.Unlimited, [], [keyId], null, cancellationToken).ConfigureAwait(false);
        sealer?.Ring.Forget(tenantId, subject, keyId);
        return outcome;
    }

    /// <summary>
    /// A retention purge: appends its purge record and removes the content of the entries in <paramref name="purge"/>
    /// in the same transaction, so a crash leaves either both or neither. The record is not sealed and not held to the
    /// storage quota (it frees space).
    /// </summary>
    public Task<AppendOutcome> AppendPurgeAsync(string tenantId, EventDraft record, EntryPurge purge, Submitter? submittedBy, CancellationToken cancellationToken) =>
        Append(tenantId, [record], idempotency: null, submittedBy, StorageQuota.Unlimited, [], [], purge, cancellationToken);

    private Task<AppendOutcome> Append(
        string tenantId,
        IReadOnlyList<EventDraft> drafts,
        IdempotencyClaim? idempotency,
        Submitter? submittedBy,
        StorageQuota quota,
        IReadOnlyList<WrappedDataKey> dataKeys,
        IReadOnlyList<string> destroyedDataKeys,
        EntryPurge? purge,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(quota);
        ArgumentNullException.ThrowIfNull(drafts);
        var receivedAt = clock.GetUtcNow();
        var entries = new PendingEntry[drafts.Count];
        Span<Guid> ids = drafts.Count <= 1024 ? stackalloc Guid[drafts.Count] : new Guid[drafts.Count];
        EventIds.FillVersion7(receivedAt, ids);
        for (var i = 0; i < drafts.Count; i++)
        {
            var d = drafts[i];
            var auditEvent = new AuditEvent(
                d.Id ?? ids[i], d.Type, d.OccurredAt, receivedAt, d.Actor, d.Action, d.Targets, d.Outcome, d.Context, d.Data)
            {
                CanonicalData = d.CanonicalData,
                SubmittedBy = submittedBy,
            };
            var leaf = LeafWriter.ToLeaf(auditEvent);
            if (leaf.Length > LeafWriter.MaxLeafBytes)
            {
                // Checked here, not in the reader: only the finished leaf (receive time, submitter) has its final size.
                return Task.FromResult<AppendOutcome>(new LeafTooLarge(i, leaf.Length));
            }

            var leafHash = MerkleHasher.HashLeaf(leaf);

            // Only a client-assigned id can meet a stored event (a fresh UUIDv7 cannot), so only then is the content
            // hash worth a second canonicalisation on the hot path.
            Hash? contentHash = d.Id is null ? null : LeafWriter.ContentHash(auditEvent);
            entries[i] = new PendingEntry(auditEvent.Id, d.Id is not null, leaf, leafHash, contentHash, receivedAt);
        }

        var request = new AppendRequest(tenantId, entries, idempotency) { DataKeys = dataKeys, DestroyedDataKeys = destroyedDataKeys, Purge = purge };
        return quota.IsUnlimited ? store.AppendAsync(request, cancellationToken) : AppendWithinQuotaAsync(request, quota, cancellationToken);
    }

    private async Task<AppendOutcome> AppendWithinQuotaAsync(AppendRequest request, StorageQuota quota, CancellationToken cancellationToken)
    {
        var usage = await store.GetStorageUsageAsync(request.TenantId, cancellationToken).ConfigureAwait(false);
        if (usage is not null)
        {
            long bytes = 0;
            foreach (var entry in request.Entries)
            {
                bytes += entry.Leaf.Length;
            }

            var events = (long)usage.StoredEvents;
            QuotaExceeded? exceeded = null;
            if (quota.MaxStoredEvents > 0 && events + request.Entries.Count > quota.MaxStoredEvents)
            {
                exceeded = new QuotaExceeded("maxStoredEvents", quota.MaxStoredEvents, events, request.Entries.Count);
            }
            else if (quota.MaxStoredBytes > 0 && usage.StoredBytes + bytes > quota.MaxStoredBytes)
            {
                exceeded = new QuotaExceeded("maxStoredBytes", quota.MaxStoredBytes, usage.StoredBytes, bytes);
            }

            if (exceeded is not null)
            {
                // Only a request the store can recognise as a retry can be a replay; any other is refused here, unread.
                return CouldBeRetry(request)
                    ? await store.AppendAsync(request with { ReplayOnly = exceeded }, cancellationToken).ConfigureAwait(false)
                    : exceeded;
            }
        }

        return await store.AppendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static bool CouldBeRetry(AppendRequest request)
    {
        if (request.Idempotency is not null)
        {
            return true;
        }

        foreach (var entry in request.Entries)
        {
            if (entry.ClientAssignedId)
            {
                return true;
            }
        }

        return false;
    }
}
