
namespace Atp.Integrity;

/// <summary>RFC 9162 §2.1.1 hashing with SHA-256: domain-separated leaf and interior-node hashes.</summary>
public static class MerkleHasher
{
    private const byte LeafPrefix = 0x00;
    private const byte NodePrefix = 0x01;

    /// <summary>Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).</summary>
    public static Hash EmptyRoot { get; } = Hash.Sha256([]);

    /// <summary>Leaf hash = SHA-256(0x00 ‖ leaf bytes).</summary>
    public static Hash HashLeaf(ReadOnlySpan<byte> leaf)
    {
        Hash result = default;
        Sha256Engine.Hash(LeafPrefix, leaf, [], result.WritableBytes());
        return result;
    }

    /// <summary>Interior node hash = SHA-256(0x01 ‖ left ‖ right).</summary>
    public static Hash HashChildren(in Hash left, in Hash right)
    {
        Hash result = default;
        Sha256Engine.Hash(NodePrefix, left.AsSpan(), right.AsSpan(), result.WritableBytes());
        return result;
    }
}
