namespace Atp.Integrity;

/// <summary>
/// Perfect-subtree hashes held in memory: for offline tools that rebuild a tree from an export, and for tests.
/// Not thread-safe.
/// </summary>
public sealed class MemoryNodeStore : IMerkleNodeReader
{
    private readonly Dictionary<NodeId, Hash> _nodes = [];

    /// <summary>Number of node reads served so far.</summary>
    public long Reads { get; private set; }

    /// <summary>Number of nodes held.</summary>
    public int Count => _nodes.Count;

    /// <summary>Stores a node (as reported by <see cref="CompactRange.Append"/>).</summary>
    public void Add(MerkleNode node) => _nodes[node.Id] = node.Hash;

    /// <inheritdoc/>
    public ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken)
    {
        var idSpan = ids.Span;
        var target = destination.Span;
        for (var i = 0; i < idSpan.Length; i++)
        {
            if (!_nodes.TryGetValue(idSpan[i], out target[i]))
            {
                throw new KeyNotFoundException($"Node {idSpan[i]} is not stored: the tree has not grown past it.");
            }
        }

        Reads += idSpan.Length;
        return ValueTask.CompletedTask;
    }
}
