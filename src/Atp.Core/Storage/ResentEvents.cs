using Atp.Core.Events;
using Atp.Integrity;

namespace Atp.Core.Storage;

/// <summary>An event already in a tenant's log, as far as re-send detection needs it.</summary>
public readonly record struct StoredEvent(ulong Index, Hash LeafHash, byte[] Leaf);

/// <summary>
/// The one rule for event ids within an append request, shared by every engine: an id may appear once per request; a
/// client-assigned id already in the log with the same content (a re-send) gets its original receipt; a different
/// event under a used id is refused. The stored side's content hash is derived from its leaf, only when ids meet.
/// </summary>
public static class ResentEvents
{
    /// <summary>
    /// Fills <paramref name="receipts"/>[i] for every re-sent entry and leaves the new ones null; returns the first
    /// conflict by position, or null.
    /// </summary>
    public static EventIdConflict? Match(IReadOnlyList<PendingEntry> entries, Func<Guid, StoredEvent?> findStored, Receipt?[] receipts)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(findStored);
        ArgumentNullException.ThrowIfNull(receipts);
        var seen = new HashSet<Guid>();
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (!seen.Add(entry.EventId))
            {
                return new EventIdConflict(entry.EventId, i);
            }

            if (entry.ClientAssignedId && findStored(entry.EventId) is { } existing)
            {
                if (entry.ContentHash is not { } contentHash || LeafWriter.ContentHashOfLeaf(existing.Leaf) != contentHash)
                {
                    return new EventIdConflict(entry.EventId, i);
                }

                receipts[i] = new Receipt(entry.EventId, existing.Index, existing.LeafHash);
            }
        }

        return null;
    }
}
