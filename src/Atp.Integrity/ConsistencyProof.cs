using System.Numerics;
using System.Security.Cryptography;

namespace Atp.Integrity;

/// <summary>Verification of RFC 9162 §2.1.4.2 consistency proofs: the tree of size2 extends the tree of size1.</summary>
public static class ConsistencyProof
{
    /// <summary>Checks that the tree with <paramref name="root2"/> and <paramref name="size2"/> leaves is an append-only extension of the tree with <paramref name="root1"/>.</summary>
    public static VerifyResult Verify(ulong size1, ulong size2, ReadOnlySpan<Hash> proof, in Hash root1, in Hash root2)
    {
        var check = CheckSizes(size1, size2, proof.Length);
        if (check is { } sizeResult)
        {
            return sizeResult.IsValid && root1 != root2
                ? VerifyResult.Fail($"trees of equal size {size1} have different roots")
                : sizeResult;
        }

        // The proof is the tail of the inclusion proof of leaf size1-1 in tree size2, starting at the level of the
        // largest perfect subtree that ends at size1 (2^shift leaves); that subtree's root is sent first unless it is
        // the whole old tree.
        var inner = InclusionProof.InnerLength(size1 - 1, size2);
        var border = BitOperations.PopCount((size1 - 1) >> inner);
        var shift = BitOperations.TrailingZeroCount(size1);
        inner -= shift;

        var oldTreeIsPerfect = size1 == 1UL << shift;
        var start = oldTreeIsPerfect ? 0 : 1;
        var expected = start + inner + border;
        if (proof.Length != expected)
        {
            return VerifyResult.Fail($"consistency proof from size {size1} to {size2} must have {expected} hashes, not {proof.Length}");
        }

        var seed = oldTreeIsPerfect ? root1 : proof[0];
        var path = proof[start..];
        var mask = (size1 - 1) >> shift;

        // Rebuild both roots from the same path: the old root only uses left siblings, the new one uses all.
        Hash hash1 = seed, hash2 = seed;
        for (var i = 0; i < inner; i++)
        {
            if (((mask >> i) & 1) == 1)
            {
                hash1 = MerkleHasher.HashChildren(path[i], hash1);
                hash2 = MerkleHasher.HashChildren(path[i], hash2);
            }
            else
            {
                hash2 = MerkleHasher.HashChildren(hash2, path[i]);
            }
        }

        for (var i = inner; i < path.Length; i++)
        {
            hash1 = MerkleHasher.HashChildren(path[i], hash1);
            hash2 = MerkleHasher.HashChildren(path[i], hash2);
        }

        if (hash1 != root1)
        {
            return VerifyResult.Fail($"consistency proof does not lead to the old root of size {size1}: got {hash1.ToBase64()}, expected {root1.ToBase64()}");
        }

        return hash2 == root2
            ? VerifyResult.Success
            : VerifyResult.Fail($"consistency proof does not lead to the new root of size {size2}: got {hash2.ToBase64()}, expected {root2.ToBase64()}");
    }

    /// <summary>
    /// Verifies a proof given as untrusted bytes. Hashes must be 32 bytes, except that two equal-size trees with an
    /// empty proof are consistent exactly when their roots are byte-for-byte equal.
    /// </summary>
    public static VerifyResult Verify(ulong size1, ulong size2, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root1, ReadOnlySpan<byte> root2)
    {
        ArgumentNullException.ThrowIfNull(proof);
        var check = CheckSizes(size1, size2, proof.Count);
        if (check is { } sizeResult)
        {
            return sizeResult.IsValid && !CryptographicOperations.FixedTimeEquals(root1, root2)
                ? VerifyResult.Fail($"trees of equal size {size1} have different roots")
                : sizeResult;
        }

        if (!Hash.TryCreate(root1, out var old))
        {
            return VerifyResult.Fail($"old root is {root1.Length} bytes, not {Hash.Size}");
        }

        if (!Hash.TryCreate(root2, out var current))
        {
            return VerifyResult.Fail($"new root is {root2.Length} bytes, not {Hash.Size}");
        }

        return ProofHashes.TryConvert(proof, out var hashes, out var failure)
            ? Verify(size1, size2, hashes, old, current)
            : VerifyResult.Fail(failure);
    }

    // Decides the cases that need no hashing: null means "go on and chain the proof"; Success means "consistent
    // provided the two roots are equal".
    private static VerifyResult? CheckSizes(ulong size1, ulong size2, int proofLength)
    {
        if (size1 == 0)
        {
            return VerifyResult.Fail("a consistency proof from the empty tree (size 0) proves nothing and is rejected");
        }

        if (size2 < size1)
        {
            return VerifyResult.Fail($"new tree size {size2} is smaller than old tree size {size1}");
        }

        if (size1 == size2)
        {
            return proofLength == 0
                ? VerifyResult.Success
                : VerifyResult.Fail($"trees of equal size {size1} need an empty consistency proof, not {proofLength} hashes");
        }

        return proofLength == 0
            ? VerifyResult.Fail($"consistency proof from size {size1} to {size2} is empty")
            : null;
    }
}
