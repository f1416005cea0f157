using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Atp.Integrity;

/// <summary>A 32-byte SHA-256 value: a leaf hash, node hash or tree root.</summary>
/// <remarks>Stored inline (four machine words) so hashes travel through proofs and trees without heap allocation.</remarks>
[StructLayout(LayoutKind.Sequential)]
public readonly struct Hash : IEquatable<Hash>
{
    /// <summary>Length of every hash in bytes (SHA-256).</summary>
    public const int Size = 32;

    private readonly ulong _a, _b, _c, _d;

    /// <summary>Copies a hash from exactly <see cref="Size"/> bytes.</summary>
    /// <exception cref="ArgumentException">The span is not 32 bytes long.</exception>
    public Hash(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"A hash is {Size} bytes, not {bytes.Length}.", nameof(bytes));
        }

        this = MemoryMarshal.Read<Hash>(bytes);
    }

    /// <summary>Creates a hash from bytes of unknown length; false unless there are exactly 32.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out Hash hash)
    {
        if (bytes.Length != Size)
        {
            hash = default;
            return false;
        }

        hash = MemoryMarshal.Read<Hash>(bytes);
        return true;
    }

    /// <summary>Parses standard (RFC 4648 §4) base64 of exactly 32 bytes.</summary>
    public static bool TryParseBase64(string? text, out Hash hash)
    {
        hash = default;
        return text is not null && StrictBase64.TryDecode(text, out var bytes) && TryCreate(bytes, out hash);
    }

    /// <summary>Parses lowercase or uppercase hex of exactly 32 bytes.</summary>
    public static Hash FromHex(string hex) => new(Convert.FromHexString(hex));

    /// <summary>SHA-256 of arbitrary bytes.</summary>
    public static Hash Sha256(ReadOnlySpan<byte> data)
    {
        Hash result = default;
        Sha256Engine.HashRaw(data, result.WritableBytes());
        return result;
    }

    /// <summary>The 32 bytes of this hash.</summary>
    [UnscopedRef]
    public ReadOnlySpan<byte> AsSpan() => MemoryMarshal.AsBytes(new ReadOnlySpan<Hash>(in this));

    /// <summary>Writes the 32 bytes into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<byte> destination) => AsSpan().CopyTo(destination);

    /// <summary>A fresh array holding the 32 bytes.</summary>
    public byte[] ToArray() => AsSpan().ToArray();

    /// <summary>Standard base64, as used in checkpoints and JSON proofs.</summary>
    public string ToBase64() => Convert.ToBase64String(AsSpan());

    /// <summary>Lowercase hex.</summary>
    public string ToHex() => Convert.ToHexStringLower(AsSpan());

    /// <inheritdoc/>
    public override string ToString() => ToHex();

    /// <summary>Constant-time comparison: roots and hashes may be compared against attacker-supplied values.</summary>
    public bool Equals(Hash other) => CryptographicOperations.FixedTimeEquals(AsSpan(), other.AsSpan());

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Hash other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(AsSpan());

    public static bool operator ==(Hash left, Hash right) => left.Equals(right);

    public static bool operator !=(Hash left, Hash right) => !left.Equals(right);

    // Only for filling a freshly created local before it is handed out; a Hash is immutable once seen.
    [UnscopedRef]
    internal Span<byte> WritableBytes() =>
        MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref Unsafe.AsRef(in this), 1));
}
