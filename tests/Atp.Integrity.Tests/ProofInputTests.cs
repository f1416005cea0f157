namespace Atp.Integrity.Tests;

/// <summary>Bad inputs give a clear failure (verification) or a clear argument error (generation), never a crash.</summary>
public sealed class ProofInputTests
{
    private static readonly byte[] Zero32 = new byte[32];

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    public void Inclusion_rejects_hashes_that_are_not_32_bytes(int length)
    {
        var wrong = new byte[length];
        Assert.Contains("not 32", InclusionProof.Verify(0, 1, wrong, [], Zero32).Failure);
        Assert.Contains("not 32", InclusionProof.Verify(0, 1, Zero32, [], wrong).Failure);
        Assert.Contains("not 32", InclusionProof.Verify(0, 2, Zero32, [wrong], Zero32).Failure);
    }

    [Fact]
    public void Consistency_rejects_proof_hashes_that_are_not_32_bytes()
    {
        var result = ConsistencyProof.Verify(1, 2, [new byte[31]], Zero32, Zero32);
        Assert.Contains("not 32", result.Failure);
    }

    [Fact]
    public void Inclusion_rejects_index_not_below_size()
    {
        Assert.Contains("not below tree size", InclusionProof.Verify(5, 5, default(Hash), [], default).Failure);
        Assert.Contains("not below tree size", InclusionProof.Verify(0, 0, default(Hash), [], default).Failure);
    }

    [Fact]
    public void Consistency_from_size_zero_is_rejected_even_with_equal_sizes()
    {
        Assert.Contains("empty tree", ConsistencyProof.Verify(0, 0, [], MerkleHasher.EmptyRoot, MerkleHasher.EmptyRoot).Failure);
        Assert.Contains("empty tree", ConsistencyProof.Verify(0, 5, ReadOnlySpan<Hash>.Empty, MerkleHasher.EmptyRoot, default(Hash)).Failure);
    }

    [Fact]
    public void Consistency_rejects_from_larger_than_to()
    {
        Assert.Contains("smaller than", ConsistencyProof.Verify(3, 2, new Hash[1], default(Hash), default(Hash)).Failure);
    }

    [Fact]
    public void Wrong_proof_length_names_the_expected_length()
    {
        var result = InclusionProof.Verify(5, 8, default(Hash), new Hash[2], default);
        Assert.Equal("inclusion proof for leaf 5 in tree size 8 must have 3 hashes, not 2", result.Failure);
    }

    [Fact]
    public async Task Generation_rejects_impossible_arguments_with_clear_messages()
    {
        var tree = TreeFixture.WithSize(4);
        var inclusion = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tree.Proofs.InclusionProofAsync(4, 4, CancellationToken.None).AsTask());
        Assert.Contains("not below tree size 4", inclusion.Message);
        var fromZero = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tree.Proofs.ConsistencyProofAsync(0, 4, CancellationToken.None).AsTask());
        Assert.Contains("empty tree", fromZero.Message);
        var reversed = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tree.Proofs.ConsistencyProofAsync(4, 3, CancellationToken.None).AsTask());
        Assert.Contains("larger than", reversed.Message);
    }

    [Fact]
    public void Edge_nodes_resume_a_tree_with_the_same_root()
    {
        var tree = TreeFixture.WithSize(77);
        var resumed = new CompactRange(77, tree.Range.Edge());
        Assert.Equal(tree.Range.Root(), resumed.Root());
        Assert.Equal(CompactRange.EdgeNodes(77).Length, tree.Range.Edge().Length);
        Assert.Throws<ArgumentException>(() => new CompactRange(77, tree.Range.Edge().AsSpan(1)));
    }

    [Fact]
    public void Node_reads_per_proof_are_logarithmic()
    {
        const ulong hundredMillion = 100_000_000;
        for (var index = 0UL; index < hundredMillion; index += 9_999_991)
        {
            Assert.InRange(ProofBuilder.InclusionReads(index, hundredMillion), 1, 2 * 27);
            Assert.InRange(ProofBuilder.ConsistencyReads(index + 1, hundredMillion), 0, 2 * 27);
        }
    }
}
