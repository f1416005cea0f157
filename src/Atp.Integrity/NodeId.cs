namespace Atp.Integrity;

/// <summary>
/// Address of a perfect subtree: the node at <paramref name="Level"/> (0 = leaves) covering leaves
/// [Index·2^Level, (Index+1)·2^Level). A perfect subtree never changes once complete, which is what makes
/// storing it by this address safe.
/// </summary>
public readonly record struct NodeId(int Level, ulong Index)
{
    /// <summary>First leaf index covered.</summary>
    public ulong Begin => Index << Level;

    /// <summary>One past the last leaf index covered.</summary>
    public ulong End => (Index + 1) << Level;
}

/// <summary>A perfect-subtree node and its hash, as persisted by a store.</summary>
public readonly record struct MerkleNode(NodeId Id, Hash Hash);
