using System.Numerics;
using Atp.Integrity;

namespace Atp.Core.StoreAudit;

/// <summary>
/// Walks one tenant's stored log in index order and checks each row against the rows before it: the leaf bytes against
/// the stored leaf hash (RFC 9162 §2.1.1: SHA-256(0x00 ‖ leaf)), and every stored node against its two stored children
/// (SHA-256(0x01 ‖ left ‖ right)). It keeps only the compact range of the tree so far (at most 64 hashes), so a log of
/// any size is checked in one pass, and gives the root at any size asked for up front (checkpoints, the tree head).
/// </summary>
/// <remarks>
/// Each level is checked against the level below as stored. A leaf whose bytes fail keeps its stored hash in the tree
/// (the nodes above were built from it, and proofs served from it); a node that fails is replaced by its recomputed
/// value, so one altered node is reported once, not again by every node above it.
/// </remarks>
public sealed class TreeAudit
{
    private readonly string _tenantId;
    private readonly Action<AuditFinding> _report;
    private readonly ulong[] _rootSizes;
    private readonly Dictionary<ulong, Hash> _roots = [];
    private readonly Hash[] _edge = new Hash[65];
    private int _count;
    private int _nextRootSize;

    /// <param name="tenantId">The tenant whose log this is (named in every finding).</param>
    /// <param name="rootSizes">Tree sizes whose root is wanted (checkpoint sizes, the head's size).</param>
    /// <param name="report">Called once per mismatch, as it is found.</param>
    public TreeAudit(string tenantId, IEnumerable<ulong> rootSizes, Action<AuditFinding> report)
    {
        _tenantId = tenantId;
        _report = report;
        _rootSizes = rootSizes.Distinct().Order().ToArray();
        AdvanceRoots();
    }

    /// <summary>Entries checked so far; the next row must have this index.</summary>
    public ulong Size { get; private set; }

    /// <summary>Leaf bytes hashed so far.</summary>
    public long LeafBytes { get; private set; }

    /// <summary>Mismatches found so far.</summary>
    public long Findings { get; private set; }

    /// <summary>True once an entry was missing: the tree above it cannot be recomputed, so no root is given after it.</summary>
    public bool IsBroken { get; private set; }

    /// <summary>The root at <paramref name="size"/>, if it was asked for and reached without a missing entry.</summary>
    public bool TryGetRoot(ulong size, out Hash root) => _roots.TryGetValue(size, out root);

    /// <summary>The root of the tree of the entries checked so far (from the stored hashes as corrected above).</summary>
    public Hash Root()
    {
        if (_count == 0)
        {
            return MerkleHasher.EmptyRoot;
        }

        var root = _edge[_count - 1];
        for (var i = _count - 2; i >= 0; i--)
        {
            root = MerkleHasher.HashChildren(_edge[i], root);
        }

        return root;
    }

    /// <summary>Checks the next stored row (see <see cref="StoredRowVisitor"/>).</summary>
    public void Check(ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash, ReadOnlySpan<byte> nodes)
    {
        if (CheckLeaf(_tenantId, index, leaf, leafHash) is { } finding)
        {
            Report(finding);
        }

        CheckTree(index, leaf.Length, leafHash, nodes);
    }

    /// <summary>
    /// The leaf check alone (SHA-256(0x00 ‖ leaf) against the stored leaf hash): independent of every other row, so a
    /// whole-store audit can run it on another core while <see cref="CheckTree"/> follows the rows in order.
    /// </summary>
    public static AuditFinding? CheckLeaf(string tenantId, ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash)
    {
        if (leafHash.Length != Hash.Size)
        {
            return new AuditFinding(tenantId, AuditFindingKind.Leaf, index, $"the stored leaf hash is {leafHash.Length} bytes, not {Hash.Size}");
        }

        // A purged entry (retention) keeps its leaf hash and has no leaf to check; no stored event is ever empty, and the
        // engines' audit sources hand an empty leaf that is not marked purged on as one byte, so it fails the check.
        if (leaf.IsEmpty)
        {
            return null;
        }

        var computed = MerkleHasher.HashLeaf(leaf);
        return computed.AsSpan().SequenceEqual(leafHash)
            ? null
            : new AuditFinding(tenantId, AuditFindingKind.Leaf, index, $"the leaf bytes hash to {computed.ToBase64()}, not to the stored leaf hash {Convert.ToBase64String(leafHash)}");
    }

    /// <summary>Everything but the leaf check: order, stored nodes against their stored children, roots. Rows in index order.</summary>
    public void CheckTree(ulong index, int leafLength, ReadOnlySpan<byte> leafHash, ReadOnlySpan<byte> nodes)
    {
        if (index != Size)
        {
            if (index < Size)
            {
                throw new InvalidOperationException($"Rows must come in index order: {index} after {Size - 1}.");
            }

            Report(AuditFindingKind.MissingEntry, Size, index - Size == 1 ? "the entry is not stored" : $"entries {Size} to {index - 1} are not stored");
            IsBroken = true;
            Size = index;
        }

        LeafBytes += leafLength;
        if (!IsBroken)
        {
            // A stored leaf hash of the wrong length (reported by the leaf check) stands in as zeros: the node above then fails too.
            Fold(index, leafHash.Length == Hash.Size ? new Hash(leafHash) : default, nodes);
        }

        Size = index + 1;
        if (_nextRootSize < _rootSizes.Length && _rootSizes[_nextRootSize] == Size)
        {
            if (!IsBroken)
            {
                _roots[Size] = Root();
            }

            _nextRootSize++;
        }
    }

    /// <summary>Reports a finding made outside this walk (the leaf checks of <see cref="CheckLeaf"/>), counted with the rest.</summary>
    public void Report(AuditFinding finding)
    {
        Findings++;
        _report(finding);
    }

    // Appending leaf n completes one node per trailing zero bit of n + 1 (RFC 9162 §2.1: the perfect subtrees that end at n).
    private void Fold(ulong index, Hash leafHash, ReadOnlySpan<byte> nodes)
    {
        _edge[_count++] = leafHash;
        var completed = BitOperations.TrailingZeroCount(index + 1);
        for (var level = 1; level <= completed; level++)
        {
            var expected = MerkleHasher.HashChildren(_edge[_count - 2], _edge[_count - 1]);
            _count -= 2;
            var nodeIndex = ((index + 1) >> level) - 1;
            var offset = (level - 1) * Hash.Size;
            if (nodes.Length < offset + Hash.Size)
            {
                Report(AuditFindingKind.Node, index, $"node (level {level}, index {nodeIndex}) is not stored");
            }
            else if (!expected.AsSpan().SequenceEqual(nodes.Slice(offset, Hash.Size)))
            {
                Report(AuditFindingKind.Node, index,
                    $"node (level {level}, index {nodeIndex}) is {Convert.ToBase64String(nodes.Slice(offset, Hash.Size))}, but its stored children hash to {expected.ToBase64()}");
            }

            _edge[_count++] = expected;
        }

        if (nodes.Length > completed * Hash.Size)
        {
            Report(AuditFindingKind.Node, index, $"the row stores {nodes.Length} bytes of nodes; leaf {index} completes {completed} node(s)");
        }
    }

    private void AdvanceRoots()
    {
        while (_nextRootSize < _rootSizes.Length && _rootSizes[_nextRootSize] == 0)
        {
            _roots[0] = MerkleHasher.EmptyRoot;
            _nextRootSize++;
        }
    }

    private void Report(AuditFindingKind kind, ulong index, string detail) => Report(new AuditFinding(_tenantId, kind, index, detail));
}
