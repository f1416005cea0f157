namespace Atp.Integrity.Tests;

/// <summary>Every tree size 1…300 and every index / size pair against the naive reference.</summary>
public sealed class ReferenceComparisonTests
{
    private const int MaxSize = 300;

    private static readonly Lazy<(TreeFixture Tree, ReferenceTree Reference)> Trees = new(() =>
    {
        var tree = TreeFixture.WithSize(MaxSize);
        var leaves = Enumerable.Range(0, MaxSize).Select(i => MerkleHasher.HashLeaf(TreeFixture.LeafBytes(i))).ToList();
        return (tree, new ReferenceTree(leaves));
    });

    [Fact]
    public void Roots_match_for_every_size()
    {
        var (tree, reference) = Trees.Value;
        for (var n = 0; n <= MaxSize; n++)
        {
            Assert.Equal(reference.Mth(0, n), tree.Roots[n]);
        }
    }

    [Fact]
    public async Task Inclusion_proofs_match_and_verify_for_every_index_and_size()
    {
        var (tree, reference) = Trees.Value;
        var checkedProofs = 0;
        for (var n = 1; n <= MaxSize; n++)
        {
            for (var m = 0; m < n; m++)
            {
                var proof = await tree.Proofs.InclusionProofAsync((ulong)m, (ulong)n, CancellationToken.None);
                Assert.Equal(reference.Path(m, 0, n), proof);
                Assert.Equal(proof.Length, InclusionProof.ExpectedLength((ulong)m, (ulong)n));
                Assert.Equal(proof.Length, ExpectedLengthFormula((ulong)m, (ulong)n));
                var result = InclusionProof.Verify((ulong)m, (ulong)n, tree.Store.Leaf(m), proof, tree.Roots[n]);
                Assert.True(result.IsValid, result.Failure);
                checkedProofs++;
            }
        }

        Assert.Equal(MaxSize * (MaxSize + 1) / 2, checkedProofs);
    }

    [Fact]
    public async Task Consistency_proofs_match_and_verify_for_every_pair_of_sizes()
    {
        var (tree, reference) = Trees.Value;
        for (var n = 1; n <= MaxSize; n++)
        {
            for (var m = 1; m <= n; m++)
            {
                var proof = await tree.Proofs.ConsistencyProofAsync((ulong)m, (ulong)n, CancellationToken.None);
                Assert.Equal(reference.Proof(m, n), proof);
                var result = ConsistencyProof.Verify((ulong)m, (ulong)n, proof, tree.Roots[m], tree.Roots[n]);
                Assert.True(result.IsValid, result.Failure);
                if (m < n)
                {
                    // A proof for one pair of sizes must not pass for a neighbouring old tree.
                    Assert.False(ConsistencyProof.Verify((ulong)m, (ulong)n, proof, tree.Roots[m - 1], tree.Roots[n]).IsValid);
                }
            }
        }
    }

    // The formula, written independently of the implementation: bitlen(index XOR (size-1)) + popcount(index >> that).
    private static int ExpectedLengthFormula(ulong index, ulong size)
    {
        var x = index ^ (size - 1);
        var bitlen = 0;
        while (x != 0)
        {
            bitlen++;
            x >>= 1;
        }

        var rest = index >> bitlen;
        var popcount = 0;
        while (rest != 0)
        {
            popcount += (int)(rest & 1);
            rest >>= 1;
        }

        return bitlen + popcount;
    }
}

internal static class MemoryNodeStoreExtensions
{
    public static Hash Leaf(this MemoryNodeStore store, int index)
    {
        var hashes = new Hash[1];
        var pending = store.ReadNodesAsync(new[] { new NodeId(0, (ulong)index) }, hashes, CancellationToken.None);
        Assert.True(pending.IsCompletedSuccessfully);
        return hashes[0];
    }
}
