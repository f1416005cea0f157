namespace Atp.Integrity;

/// <summary>
/// Reads persisted perfect-subtree node hashes (level 0 = leaf hashes). The seam between the proof algorithms and a
/// store; every node requested was written by <see cref="CompactRange.Append"/> when the tree grew past it.
/// </summary>
public interface IMerkleNodeReader
{
    /// <summary>Fills <paramref name="destination"/>[i] with the hash of <paramref name="ids"/>[i], in one round trip.</summary>
    ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken);
}
