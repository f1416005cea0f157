using System.Numerics;

namespace Atp.Integrity;

/// <summary>
/// The right edge of an append-only RFC 9162 tree: one perfect-subtree hash per set bit of the tree size, largest
/// first. This is all that appending and computing the root need, so memory is O(log n) whatever the tree size;
/// every perfect node that appending completes is reported so a store can persist it for later proofs.
/// </summary>
public sealed class CompactRange
{
    // Sized to the tree's height and grown as the tree grows (at most 64 slots, one per bit of a 64-bit size). A
    // server keeps one range per log it appends to, so a fixed 64-slot array (2 KiB) per log was most of what every
    // tenant ever written to cost in memory (issue 22); a range now holds a few hundred bytes.
    private const int MinimumSlots = 4;
    private Hash[] _edge;
    private int _count;

    /// <summary>An empty tree.</summary>
    public CompactRange()
    {
        _edge = new Hash[MinimumSlots];
    }

    /// <summary>Resumes a tree of <paramref name="size"/> leaves from the hashes of <see cref="EdgeNodes"/>(size).</summary>
    public CompactRange(ulong size, ReadOnlySpan<Hash> edge)
    {
        if (edge.Length != BitOperations.PopCount(size))
        {
            throw new ArgumentException(
                $"A tree of size {size} has {BitOperations.PopCount(size)} edge nodes, not {edge.Length}.",
                nameof(edge));
        }

        // Room for the edge one level taller than the tree is now: appends grow it only when the tree's height grows.
        _edge = new Hash[Math.Clamp(65 - BitOperations.LeadingZeroCount(size), MinimumSlots, 64)];
        edge.CopyTo(_edge);
        _count = edge.Length;
        Size = size;
    }

    /// <summary>Number of leaves appended.</summary>
    public ulong Size { get; private set; }

    /// <summary>The perfect subtrees covering [0, size), largest (leftmost) first.</summary>
    public static NodeId[] EdgeNodes(ulong size)
    {
        var nodes = new NodeId[BitOperations.PopCount(size)];
        var position = 0UL;
        var i = 0;
        for (var level = 63; level >= 0; level--)
        {
            if ((size & (1UL << level)) != 0)
            {
                nodes[i++] = new NodeId(level, position >> level);
                position += 1UL << level;
            }
        }

        return nodes;
    }

    /// <summary>
    /// Appends one leaf hash. The leaf and every perfect node it completes are added to <paramref name="completed"/>
    /// (when given) in the order they come into existence.
    /// </summary>
    public void Append(in Hash leafHash, ICollection<MerkleNode>? completed = null)
    {
        var index = Size;
        var hash = leafHash;
        completed?.Add(new MerkleNode(new NodeId(0, index), hash));

        // Each trailing one bit of the old size is a perfect subtree of equal height waiting on its right sibling.
        var level = 0;
        while (((index >> level) & 1) == 1)
        {
            hash = MerkleHasher.HashChildren(_edge[--_count], hash);
            level++;
            completed?.Add(new MerkleNode(new NodeId(level, index >> level), hash));
        }

        Push(hash);
        Size = index + 1;
    }

    /// <summary>
    /// Appends a whole perfect subtree of 2^<paramref name="level"/> leaves given by its root, as if its leaves were
    /// appended one by one (without reporting completed nodes). The tree size must be a multiple of its width, so the
    /// subtree lands where such a subtree of the full tree sits. This lets callers hash aligned blocks of leaves in
    /// parallel and fold only their roots in order.
    /// </summary>
    public void AppendSubtree(int level, in Hash root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(level);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 62);
        var width = 1UL << level;
        if ((Size & (width - 1)) != 0 || Size + width < Size)
        {
            throw new InvalidOperationException($"A subtree of {width} leaves cannot follow a tree of size {Size}.");
        }

        var index = Size >> level;
        var hash = root;
        while ((index & 1) == 1)
        {
            hash = MerkleHasher.HashChildren(_edge[--_count], hash);
            index >>= 1;
        }

        Push(hash);
        Size += width;
    }

    private void Push(in Hash hash)
    {
        if (_count == _edge.Length)
        {
            Array.Resize(ref _edge, Math.Min(64, _edge.Length * 2));
        }

        _edge[_count++] = hash;
    }

    /// <summary>
    /// The root of the perfect tree over <paramref name="leafHashes"/> (a power-of-two count), computed in place:
    /// the span's contents are overwritten.
    /// </summary>
    public static Hash PerfectRoot(Span<Hash> leafHashes)
    {
        var width = leafHashes.Length;
        if (width == 0 || !BitOperations.IsPow2(width))
        {
            throw new ArgumentException($"A perfect subtree has a power-of-two number of leaves, not {width}.", nameof(leafHashes));
        }

        for (; width > 1; width >>= 1)
        {
            for (var i = 0; i < width / 2; i++)
            {
                leafHashes[i] = MerkleHasher.HashChildren(leafHashes[2 * i], leafHashes[(2 * i) + 1]);
            }
        }

        return leafHashes[0];
    }

    /// <summary>The tree head: MTH(D[0:size]) per RFC 9162 §2.1.1.</summary>
    public Hash Root() => FoldRight(_edge.AsSpan(0, _count));

    /// <summary>Hashes of the edge, largest subtree first (what <see cref="CompactRange(ulong, ReadOnlySpan{Hash})"/> takes).</summary>
    public Hash[] Edge() => _edge.AsSpan(0, _count).ToArray();

    /// <summary>
    /// Root of a range given as its perfect subtrees, largest first. RFC 9162 splits an n-leaf range at the largest
    /// power of two below n, which for a left-aligned range is exactly its first perfect subtree, so folding from the
    /// right reproduces MTH.
    /// </summary>
    internal static Hash FoldRight(ReadOnlySpan<Hash> subtrees)
    {
        if (subtrees.IsEmpty)
        {
            return MerkleHasher.EmptyRoot;
        }

        var acc = subtrees[^1];
        for (var i = subtrees.Length - 2; i >= 0; i--)
        {
            acc = MerkleHasher.HashChildren(subtrees[i], acc);
        }

        return acc;
    }
}
