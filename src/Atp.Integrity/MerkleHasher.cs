using System.Buffers;
using System.Security.Cryptography;

namespace Atp.Integrity;

/// <summary>RFC 9162 §2.1.1 hashing with SHA-256: domain-separated leaf and interior-node hashes.</summary>
public static class MerkleHasher
{
    private const byte LeafPrefix = 0x00;
    private const byte NodePrefix = 0x01;
    private const int StackLimit = 1024;

    /// <summary>Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).</summary>
    public static Hash EmptyRoot { get; } = Hash.Sha256([]);

    /// <summary>Leaf hash = SHA-256(0x00 ‖ leaf bytes).</summary>
    public static Hash HashLeaf(ReadOnlySpan<byte> leaf)
    {
        // One-shot hashing of a prefixed copy beats an incremental hasher by a wide margin for audit-event
        // sized leaves; the copy lives on the stack or in a pooled buffer.
        var length = leaf.Length + 1;
        byte[]? rented = null;
        var buffer = length <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            buffer[0] = LeafPrefix;
            leaf.CopyTo(buffer[1..]);
            Hash result = default;
            SHA256.HashData(buffer[..length], result.WritableBytes());
            return result;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Interior node hash = SHA-256(0x01 ‖ left ‖ right).</summary>
    public static Hash HashChildren(in Hash left, in Hash right)
    {
        Span<byte> buffer = stackalloc byte[1 + (2 * Hash.Size)];
        buffer[0] = NodePrefix;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + Hash.Size)..]);
        Hash result = default;
        SHA256.HashData(buffer, result.WritableBytes());
        return result;
    }
}
