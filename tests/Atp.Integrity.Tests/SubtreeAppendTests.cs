using CsCheck;

namespace Atp.Integrity.Tests;

/// <summary>Appending aligned perfect subtrees by their roots builds the same tree as appending their leaves one by one.</summary>
public sealed class SubtreeAppendTests
{
    [Fact]
    public void Aligned_blocks_appended_as_subtrees_give_the_reference_root_at_every_size()
    {
        var leaves = Enumerable.Range(0, 300).Select(i => MerkleHasher.HashLeaf(BitConverter.GetBytes(i))).ToList();
        var reference = new ReferenceTree(leaves);
        for (var start = 0; start < 70; start++)
        {
            for (var end = start; end <= 300; end += 1 + (end % 7))
            {
                var range = new CompactRange();
                for (var i = 0; i < start; i++)
                {
                    range.Append(leaves[i]);
                }

                AppendBlocks(range, leaves, start, end);
                Assert.Equal((ulong)end, range.Size);
                Assert.Equal(reference.Mth(0, end), range.Root());
            }
        }
    }

    [Fact]
    public void Random_splits_into_blocks_match_leaf_by_leaf_appends()
    {
        Gen.Select(Gen.Int[0, 2_000], Gen.Int[1, 600]).Sample((size, block) =>
        {
            var leaves = Enumerable.Range(0, size).Select(i => MerkleHasher.HashLeaf(BitConverter.GetBytes(i * 31))).ToList();
            var expected = new CompactRange();
            leaves.ForEach(l => expected.Append(l));
            var actual = new CompactRange();
            for (var from = 0; from < size; from += block)
            {
                AppendBlocks(actual, leaves, from, Math.Min(size, from + block));
            }

            return actual.Root() == expected.Root() && actual.Edge().SequenceEqual(expected.Edge());
        }, iter: 200);
    }

    [Fact]
    public void A_subtree_that_does_not_sit_on_its_own_boundary_is_refused()
    {
        var range = new CompactRange();
        range.Append(MerkleHasher.HashLeaf([1]));
        Assert.Throws<InvalidOperationException>(() => range.AppendSubtree(1, MerkleHasher.HashLeaf([2])));
        Assert.Throws<ArgumentException>(() => CompactRange.PerfectRoot(new Hash[3]));
        Assert.Equal(1UL, range.Size);
    }

    // The largest aligned power-of-two blocks of [from, to), each reduced to its root and appended at its level.
    private static void AppendBlocks(CompactRange range, List<Hash> leaves, int from, int to)
    {
        var index = from;
        while (index < to)
        {
            var level = Math.Min(index == 0 ? 62 : System.Numerics.BitOperations.TrailingZeroCount(index), System.Numerics.BitOperations.Log2((uint)(to - index)));
            var width = 1 << level;
            var block = leaves.GetRange(index, width).ToArray();
            range.AppendSubtree(level, CompactRange.PerfectRoot(block));
            index += width;
        }
    }
}
