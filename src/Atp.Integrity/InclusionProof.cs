using System.Numerics;

namespace Atp.Integrity;

/// <summary>Verification of RFC 9162 §2.1.3.2 inclusion proofs (audit paths).</summary>
public static class InclusionProof
{
    /// <summary>
    /// The exact number of hashes an inclusion proof for (index, size) has: the inner part, up to where the leaf's
    /// path meets the right edge, plus one hash per perfect subtree to the left above that point.
    /// </summary>
    public static int ExpectedLength(ulong index, ulong size)
    {
        var inner = InnerLength(index, size);
        return inner + BitOperations.PopCount(index >> inner);
    }

    /// <summary>Checks that <paramref name="leafHash"/> is leaf <paramref name="index"/> of the tree of <paramref name="size"/> leaves with <paramref name="root"/>.</summary>
    public static VerifyResult Verify(ulong index, ulong size, in Hash leafHash, ReadOnlySpan<Hash> proof, in Hash root)
    {
        var computed = ComputeRoot(index, size, leafHash, proof, out var failure);
        if (failure is not null)
        {
            return VerifyResult.Fail(failure);
        }

        return computed == root
            ? VerifyResult.Success
            : VerifyResult.Fail($"inclusion proof for leaf {index} leads to root {computed.ToBase64()}, not the expected root {root.ToBase64()} of tree size {size}");
    }

    /// <summary>
    /// Verifies a proof given as untrusted bytes (e.g. decoded from JSON): every hash must be exactly 32 bytes.
    /// </summary>
    public static VerifyResult Verify(ulong index, ulong size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (!Hash.TryCreate(leafHash, out var leaf))
        {
            return VerifyResult.Fail($"leaf hash is {leafHash.Length} bytes, not {Hash.Size}");
        }

        if (!Hash.TryCreate(root, out var rootHash))
        {
            return VerifyResult.Fail($"root hash is {root.Length} bytes, not {Hash.Size}");
        }

        if (!ProofHashes.TryConvert(proof, out var hashes, out var failure))
        {
            return VerifyResult.Fail(failure);
        }

        return Verify(index, size, leaf, hashes, rootHash);
    }

    /// <summary>
    /// The root implied by a leaf and its audit path, or a failure reason when the arguments cannot form a proof.
    /// Follows the bit-walk of RFC 9162 §2.1.3.2, split at the point where the path joins the tree's right edge.
    /// </summary>
    internal static Hash ComputeRoot(ulong index, ulong size, in Hash leafHash, ReadOnlySpan<Hash> proof, out string? failure)
    {
        if (index >= size)
        {
            failure = $"leaf index {index} is not below tree size {size}";
            return default;
        }

        var inner = InnerLength(index, size);
        var expected = inner + BitOperations.PopCount(index >> inner);
        if (proof.Length != expected)
        {
            failure = $"inclusion proof for leaf {index} in tree size {size} must have {expected} hashes, not {proof.Length}";
            return default;
        }

        var hash = leafHash;
        for (var i = 0; i < inner; i++)
        {
            hash = ((index >> i) & 1) == 0
                ? MerkleHasher.HashChildren(hash, proof[i])
                : MerkleHasher.HashChildren(proof[i], hash);
        }

        // Above the join point the leaf is always in a right subtree: each remaining hash is a left sibling.
        for (var i = inner; i < proof.Length; i++)
        {
            hash = MerkleHasher.HashChildren(proof[i], hash);
        }

        failure = null;
        return hash;
    }

    // Levels where the path to `index` and the path to the last leaf (size-1) have not yet joined.
    internal static int InnerLength(ulong index, ulong size) => 64 - BitOperations.LeadingZeroCount(index ^ (size - 1));
}
