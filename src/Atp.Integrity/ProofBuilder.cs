using System.Numerics;

namespace Atp.Integrity;

/// <summary>
/// Generates RFC 9162 inclusion and consistency proofs (§2.1.3.1, §2.1.4.1) and historical roots from persisted
/// perfect-subtree hashes. Each proof element is MTH of a leaf range; all but at most one such range are perfect
/// subtrees (one stored node), the exception is the right edge of the tree (at most log2 n nodes), so a proof costs
/// O(log n) node reads issued as one batch.
/// </summary>
public sealed class ProofBuilder
{
    private readonly IMerkleNodeReader _nodes;

    /// <summary>Creates a builder over a node store.</summary>
    public ProofBuilder(IMerkleNodeReader nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        _nodes = nodes;
    }

    /// <summary>Audit path for leaf <paramref name="index"/> in the tree of <paramref name="size"/> leaves, leaf to root.</summary>
    /// <exception cref="ArgumentOutOfRangeException">index ≥ size.</exception>
    public ValueTask<Hash[]> InclusionProofAsync(ulong index, ulong size, CancellationToken cancellationToken)
    {
        if (index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Leaf index {index} is not below tree size {size}.");
        }

        return ResolveAsync(InclusionRanges(index, size), cancellationToken);
    }

    /// <summary>Consistency proof between tree sizes <paramref name="from"/> and <paramref name="to"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">from is 0 or from &gt; to.</exception>
    public ValueTask<Hash[]> ConsistencyProofAsync(ulong from, ulong to, CancellationToken cancellationToken)
    {
        if (from == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, "A consistency proof from the empty tree proves nothing; size 'from' must be at least 1.");
        }

        if (from > to)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, $"Tree size 'from' ({from}) is larger than 'to' ({to}).");
        }

        return ResolveAsync(ConsistencyRanges(from, to), cancellationToken);
    }

    /// <summary>The root of the tree when it had <paramref name="size"/> leaves.</summary>
    public async ValueTask<Hash> RootAsync(ulong size, CancellationToken cancellationToken)
    {
        var ids = CompactRange.EdgeNodes(size);
        var hashes = new Hash[ids.Length];
        await _nodes.ReadNodesAsync(ids, hashes, cancellationToken).ConfigureAwait(false);
        return CompactRange.FoldRight(hashes);
    }

    /// <summary>Number of node reads an inclusion proof costs (for capacity planning and benchmarks).</summary>
    public static int InclusionReads(ulong index, ulong size) => CountNodes(InclusionRanges(index, size));

    /// <summary>Number of node reads a consistency proof costs.</summary>
    public static int ConsistencyReads(ulong from, ulong to) => CountNodes(ConsistencyRanges(from, to));

    // RFC 9162 §2.1.3.1 PATH(m, D[0:n]), unrolled from the root down; the RFC lists elements leaf-first, so reverse.
    internal static List<LeafRange> InclusionRanges(ulong index, ulong size)
    {
        var ranges = new List<LeafRange>(64);
        ulong lo = 0, hi = size;
        while (hi - lo > 1)
        {
            var k = LargestPowerOfTwoBelow(hi - lo);
            if (index < lo + k)
            {
                ranges.Add(new LeafRange(lo + k, hi));
                hi = lo + k;
            }
            else
            {
                ranges.Add(new LeafRange(lo, lo + k));
                lo += k;
            }
        }

        ranges.Reverse();
        return ranges;
    }

    // RFC 9162 §2.1.4.1 SUBPROOF(m, D[0:n], true), unrolled the same way; m is tracked relative to lo.
    internal static List<LeafRange> ConsistencyRanges(ulong from, ulong to)
    {
        var ranges = new List<LeafRange>(64);
        ulong lo = 0, hi = to, m = from;
        var startsAtOldRoot = true;
        while (true)
        {
            var n = hi - lo;
            if (m == n)
            {
                if (!startsAtOldRoot)
                {
                    ranges.Add(new LeafRange(lo, hi));
                }

                break;
            }

            var k = LargestPowerOfTwoBelow(n);
            if (m <= k)
            {
                ranges.Add(new LeafRange(lo + k, hi));
                hi = lo + k;
            }
            else
            {
                ranges.Add(new LeafRange(lo, lo + k));
                lo += k;
                m -= k;
                startsAtOldRoot = false;
            }
        }

        ranges.Reverse();
        return ranges;
    }

    private async ValueTask<Hash[]> ResolveAsync(List<LeafRange> ranges, CancellationToken cancellationToken)
    {
        var ids = new List<NodeId>(2 * ranges.Count);
        var firstNode = new int[ranges.Count + 1];
        for (var i = 0; i < ranges.Count; i++)
        {
            firstNode[i] = ids.Count;
            ranges[i].AppendNodes(ids);
        }

        firstNode[ranges.Count] = ids.Count;
        var idArray = ids.ToArray();
        var hashes = new Hash[idArray.Length];
        await _nodes.ReadNodesAsync(idArray, hashes, cancellationToken).ConfigureAwait(false);

        var proof = new Hash[ranges.Count];
        for (var i = 0; i < ranges.Count; i++)
        {
            proof[i] = CompactRange.FoldRight(hashes.AsSpan(firstNode[i], firstNode[i + 1] - firstNode[i]));
        }

        return proof;
    }

    private static int CountNodes(List<LeafRange> ranges)
    {
        var count = 0;
        foreach (var range in ranges)
        {
            count += BitOperations.PopCount(range.End - range.Begin);
        }

        return count;
    }

    private static ulong LargestPowerOfTwoBelow(ulong n) => 1UL << (63 - BitOperations.LeadingZeroCount(n - 1));

    /// <summary>Leaves [Begin, End); Begin is always aligned to the range's largest subtree, as the RFC's splits guarantee.</summary>
    internal readonly record struct LeafRange(ulong Begin, ulong End)
    {
        public void AppendNodes(List<NodeId> into)
        {
            var position = Begin;
            var remaining = End - Begin;
            for (var level = 63; level >= 0; level--)
            {
                if ((remaining & (1UL << level)) != 0)
                {
                    into.Add(new NodeId(level, position >> level));
                    position += 1UL << level;
                }
            }
        }
    }
}
