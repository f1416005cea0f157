using Atp.Integrity;

namespace Atp.Core.Storage;

/// <summary>
/// An entry ready to be appended: its event id, canonical leaf bytes and leaf hash. <paramref name="ContentHash"/>
/// (the event without its receive time, see <c>LeafWriter.ContentHash</c>) is given for client-assigned ids, the only
/// ones that can meet an already stored event.
/// </summary>
public sealed record PendingEntry(Guid EventId, bool ClientAssignedId, byte[] Leaf, Hash LeafHash, Hash? ContentHash, DateTimeOffset ReceivedAt);

/// <summary>Proof that an event was durably appended: where it is and what its leaf hash is.</summary>
public sealed record Receipt(Guid Id, ulong Index, Hash LeafHash);

/// <summary>An Idempotency-Key with the hash of the request body it was first used with.</summary>
public sealed record IdempotencyClaim(string Key, Hash RequestHash);

/// <summary>One append of one request: all entries or none.</summary>
public sealed record AppendRequest(string TenantId, IReadOnlyList<PendingEntry> Entries, IdempotencyClaim? Idempotency)
{
    /// <summary>
    /// Wrapped data keys the entries' sealed fields need and the store may not have yet: stored in the same
    /// transaction as the entries (a key already stored with the same bytes is kept; one with other bytes fails the request).
    /// </summary>
    public IReadOnlyList<Classification.WrappedDataKey> DataKeys { get; init; } = [];

    /// <summary>
    /// Set when storing the request would cross a storage quota: it may still be a client's retry of a request that
    /// was stored (same Idempotency-Key, or the same client-assigned event ids), whose receipts must be replayed rather
    /// than refused. The store answers a replay as usual; if any entry is new it returns this refusal and stores nothing.
    /// </summary>
    public QuotaExceeded? ReplayOnly { get; init; }

    /// <summary>
    /// Ids of data keys to destroy in the same transaction as the entries (an erasure and its tombstone): once the
    /// append commits, no token sealed under them can be opened again; if it does not, nothing is destroyed.
    /// </summary>
    public IReadOnlyList<string> DestroyedDataKeys { get; init; } = [];

    /// <summary>
    /// Entries whose content a retention pass removes in the same transaction as its purge record, the request's only
    /// entry (docs/operations.md, "Retention"): each gets an empty leaf and the record's index as <see cref="LogEntry.PurgedBy"/>;
    /// leaf hashes and nodes stay. If any of them is purged already the request fails and nothing is stored.
    /// </summary>
    public EntryPurge? Purge { get; init; }
}

/// <summary>Entries of the request's tenant to purge, and the sum of their leaves' byte lengths (taken off the stored bytes).</summary>
public sealed record EntryPurge(IReadOnlyList<ulong> Indexes, long Bytes);

/// <summary>What an append did.</summary>
public abstract record AppendOutcome
{
    private protected AppendOutcome()
    {
    }
}

/// <summary>Durable: the receipts, in request order. <paramref name="Replayed"/> when nothing new was stored.</summary>
public sealed record Appended(IReadOnlyList<Receipt> Receipts, bool Replayed) : AppendOutcome;

/// <summary>The Idempotency-Key was first used with a different request body.</summary>
public sealed record IdempotencyKeyReused(string Key) : AppendOutcome;

/// <summary>An event id already names a different event in this tenant's log.</summary>
public sealed record EventIdConflict(Guid EventId, int Position) : AppendOutcome;

/// <summary>Event <paramref name="Position"/> of the request would make a leaf of <paramref name="Bytes"/> bytes, more than <c>LeafWriter.MaxLeafBytes</c>; nothing was stored.</summary>
public sealed record LeafTooLarge(int Position, int Bytes) : AppendOutcome;

/// <summary>
/// Storing the request would take the tenant past its <paramref name="Quota"/> (<c>maxStoredEvents</c> or
/// <c>maxStoredBytes</c>) of <paramref name="Limit"/>, with <paramref name="Usage"/> already stored and
/// <paramref name="Requested"/> more in the request; nothing was stored.
/// </summary>
public sealed record QuotaExceeded(string Quota, long Limit, long Usage, long Requested) : AppendOutcome;

/// <summary>One stored log entry.</summary>
public sealed record LogEntry(ulong Index, Guid EventId, byte[] Leaf, Hash LeafHash, DateTimeOffset ReceivedAt)
{
    /// <summary>
    /// The index of the purge record that removed the entry's content (then <see cref="Leaf"/> is empty and only
    /// <see cref="LeafHash"/> stands for it); null while the content is stored.
    /// </summary>
    public ulong? PurgedBy { get; init; }
}

/// <summary>The size and root of a tenant's tree as committed.</summary>
public sealed record TreeHead(ulong Size, Hash Root);

/// <summary>A signed checkpoint note as stored.</summary>
public sealed record StoredCheckpoint(ulong Size, string Note, DateTimeOffset CreatedAt);

/// <summary>A tenant whose tree has grown past its latest checkpoint.</summary>
public sealed record UnsealedLog(string TenantId, TreeHead Head);

/// <summary>What a tenant's log stores, as committed: its tree size and the sum of its leaves' byte lengths.</summary>
public sealed record StorageUsage(ulong StoredEvents, long StoredBytes);

/// <summary>A tenant's committed tree size.</summary>
public sealed record LogSize(string TenantId, ulong Size);
