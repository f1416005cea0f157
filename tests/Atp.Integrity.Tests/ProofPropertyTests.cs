using CsCheck;

namespace Atp.Integrity.Tests;

/// <summary>Property-based checks: random proofs verify; any flipped bit, wrong length or wrong size fails.</summary>
public sealed class ProofPropertyTests
{
    private const int MaxSize = 2000;
    private static readonly Lazy<TreeFixture> Tree = new(() => TreeFixture.WithSize(MaxSize));

    private static readonly Gen<(ulong Index, ulong Size)> IndexAndSize =
        Gen.ULong[1, MaxSize].SelectMany(size => Gen.ULong[0, size - 1].Select(index => (index, size)));

    private static readonly Gen<(ulong From, ulong To)> SizePair =
        Gen.ULong[1, MaxSize].SelectMany(to => Gen.ULong[1, to].Select(from => (from, to)));

    [Fact]
    public async Task Random_inclusion_proofs_verify_and_any_flipped_bit_fails()
    {
        var tree = Tree.Value;
        await IndexAndSize.Select(Gen.Int, Gen.Int[0, 255]).SampleAsync(async sample =>
        {
            var ((index, size), pick, bit) = sample;
            var proof = await tree.Proofs.InclusionProofAsync(index, size, CancellationToken.None);
            var leaf = tree.Store.Leaf((int)index);
            var root = tree.Roots[(int)size];
            Assert.True(InclusionProof.Verify(index, size, leaf, proof, root).IsValid);

            // Flip one bit somewhere in the proof, the leaf or the root: the verifier must notice.
            var target = Math.Abs(pick % (proof.Length + 2));
            if (target < proof.Length)
            {
                proof[target] = Flip(proof[target], bit);
            }
            else if (target == proof.Length)
            {
                leaf = Flip(leaf, bit);
            }
            else
            {
                root = Flip(root, bit);
            }

            Assert.False(InclusionProof.Verify(index, size, leaf, proof, root).IsValid);
        }, iter: 3000);
    }

    [Fact]
    public async Task Inclusion_proofs_of_the_wrong_length_or_for_another_position_fail()
    {
        var tree = Tree.Value;
        await IndexAndSize.Select(Gen.Bool).SampleAsync(async sample =>
        {
            var ((index, size), longer) = sample;
            var proof = await tree.Proofs.InclusionProofAsync(index, size, CancellationToken.None);
            var leaf = tree.Store.Leaf((int)index);
            var root = tree.Roots[(int)size];
            Hash[] wrongLength = longer ? [.. proof, root] : proof.Length > 0 ? proof[..^1] : [root];
            Assert.False(InclusionProof.Verify(index, size, leaf, wrongLength, root).IsValid);
            if (size > 1)
            {
                var other = (index + 1) % size;
                Assert.False(InclusionProof.Verify(other, size, leaf, proof, root).IsValid);
            }
        }, iter: 2000);
    }

    [Fact]
    public async Task Random_consistency_proofs_verify_and_any_flipped_bit_or_wrong_length_fails()
    {
        var tree = Tree.Value;
        await SizePair.Select(Gen.Int, Gen.Int[0, 255], Gen.Bool).SampleAsync(async sample =>
        {
            var ((from, to), pick, bit, longer) = sample;
            var proof = await tree.Proofs.ConsistencyProofAsync(from, to, CancellationToken.None);
            var root1 = tree.Roots[(int)from];
            var root2 = tree.Roots[(int)to];
            Assert.True(ConsistencyProof.Verify(from, to, proof, root1, root2).IsValid);

            Hash[] wrongLength = longer ? [.. proof, root2] : proof.Length > 0 ? proof[..^1] : [root2];
            Assert.False(ConsistencyProof.Verify(from, to, wrongLength, root1, root2).IsValid);

            var target = Math.Abs(pick % (proof.Length + 2));
            if (target < proof.Length)
            {
                proof[target] = Flip(proof[target], bit);
            }
            else if (target == proof.Length)
            {
                root1 = Flip(root1, bit);
            }
            else
            {
                root2 = Flip(root2, bit);
            }

            // A flipped bit in a proof element that does not feed either root cannot exist: every element is used.
            Assert.False(ConsistencyProof.Verify(from, to, proof, root1, root2).IsValid);
        }, iter: 3000);
    }

    private static Hash Flip(Hash hash, int bit)
    {
        var bytes = hash.ToArray();
        bytes[bit / 8] ^= (byte)(1 << (bit % 8));
        return new Hash(bytes);
    }
}
