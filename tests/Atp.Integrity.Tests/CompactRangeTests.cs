namespace Atp.Integrity.Tests;

/// <summary>
/// A range resumed from its edge holds only as many slots as the tree's height needs and grows as the tree does; the
/// roots must stay those of the reference tree across every growth.
/// </summary>
public sealed class CompactRangeTests
{
    [Fact]
    public void A_range_resumed_at_any_size_gives_the_reference_root_while_it_grows_past_its_height()
    {
        var leaves = Enumerable.Range(0, 1100).Select(i => MerkleHasher.HashLeaf(BitConverter.GetBytes(i * 7))).ToList();
        var reference = new ReferenceTree(leaves);
        var built = new CompactRange();
        built.Append(leaves[0]);
        for (var size = 1; size < 70; size++)
        {
            var resumed = new CompactRange((ulong)size, built.Edge());
            Assert.Equal(reference.Mth(0, size), resumed.Root());
            for (var end = size; end < leaves.Count; end++)
            {
                resumed.Append(leaves[end]);
                if ((end & (end + 1)) == 0 || end % 97 == 0)
                {
                    Assert.Equal(reference.Mth(0, end + 1), resumed.Root());
                }
            }

            Assert.Equal(reference.Mth(0, leaves.Count), resumed.Root());
            built.Append(leaves[size]);
        }
    }

    [Fact]
    public void A_range_resumed_near_the_largest_size_keeps_every_edge_hash()
    {
        // 2^63 - 1 leaves: 63 edge hashes, the most a range resumed this way holds; one append folds them all into one.
        var size = (1UL << 63) - 1;
        var edge = Enumerable.Range(0, 63).Select(i => MerkleHasher.HashLeaf(BitConverter.GetBytes(i))).ToArray();
        var range = new CompactRange(size, edge);
        Assert.Equal(edge, range.Edge());
        range.Append(MerkleHasher.HashLeaf([1]));
        Assert.Equal(1UL << 63, range.Size);
        Assert.Single(range.Edge());
    }
}
