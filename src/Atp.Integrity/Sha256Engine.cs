using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Atp.Integrity;

/// <summary>
/// SHA-256 for the tree's hot path. Every leaf and interior node costs one hash of 33–1000 bytes; through OpenSSL 3's
/// EVP interface (what <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> uses) each such call spends
/// ~400 ns in provider dispatch, several times the hashing itself. OpenSSL's low-level SHA256_Init/Update/Final runs
/// the same SHA-NI/AVX assembly without that dispatch (measured ~87 ns vs ~410 ns for a 65-byte node, see
/// docs/performance.md). Where libcrypto.so.3 or those exports are missing, or the self-test fails, the EVP path is
/// used: same result, only slower.
/// </summary>
internal static unsafe class Sha256Engine
{
    // OpenSSL's SHA256_CTX is 112 bytes; reserve more so a layout change cannot write past the buffer.
    private const int ContextBytes = 256;

    // Inputs up to this size are hashed in well under a microsecond, short enough to call without the GC
    // transition (the documented condition for SuppressGCTransition); they are also concatenated on the stack so
    // OpenSSL sees one update instead of three.
    private const int SmallInput = 2048;

    // Up to this size an input is copied behind its prefix so OpenSSL gets one update (an interior node's 64 bytes).
    private const int CopyLimit = 128;

    private static readonly delegate* unmanaged<byte*, int> Init;
    private static readonly delegate* unmanaged<byte*, byte*, nuint, int> Update;
    private static readonly delegate* unmanaged<byte*, byte*, int> Final;
    private static readonly delegate* unmanaged[SuppressGCTransition]<byte*, int> FastInit;
    private static readonly delegate* unmanaged[SuppressGCTransition]<byte*, byte*, nuint, int> FastUpdate;
    private static readonly delegate* unmanaged[SuppressGCTransition]<byte*, byte*, int> FastFinal;

#pragma warning disable CA1810 // Explicit static constructor: the function pointers must be resolved together and self-tested once.
    static Sha256Engine()
#pragma warning restore CA1810
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libcrypto.so.3", out var library))
        {
            return;
        }

        if (NativeLibrary.TryGetExport(library, "SHA256_Init", out var init)
            && NativeLibrary.TryGetExport(library, "SHA256_Update", out var update)
            && NativeLibrary.TryGetExport(library, "SHA256_Final", out var final))
        {
            Init = (delegate* unmanaged<byte*, int>)init;
            Update = (delegate* unmanaged<byte*, byte*, nuint, int>)update;
            Final = (delegate* unmanaged<byte*, byte*, int>)final;
            FastInit = (delegate* unmanaged[SuppressGCTransition]<byte*, int>)init;
            FastUpdate = (delegate* unmanaged[SuppressGCTransition]<byte*, byte*, nuint, int>)update;
            FastFinal = (delegate* unmanaged[SuppressGCTransition]<byte*, byte*, int>)final;
            IsNative = SelfTest();
        }
    }

    /// <summary>True when the low-level OpenSSL path is in use.</summary>
    public static bool IsNative { get; }

    /// <summary>SHA-256 of <paramref name="prefix"/> ‖ <paramref name="first"/> ‖ <paramref name="second"/>, without concatenating.</summary>
    public static void Hash(byte prefix, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        if (IsNative && NativeHash(prefix, first, second, destination))
        {
            return;
        }

        ManagedHash(prefix, first, second, destination);
    }

    /// <summary>Plain SHA-256 of <paramref name="data"/>.</summary>
    public static void HashRaw(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (IsNative)
        {
            var context = stackalloc byte[ContextBytes];
            fixed (byte* a = data)
            fixed (byte* digest = destination)
            {
                var done = data.Length <= SmallInput
                    ? FastInit(context) == 1 && FastUpdate(context, a, (nuint)data.Length) == 1 && FastFinal(digest, context) == 1
                    : Init(context) == 1 && Update(context, a, (nuint)data.Length) == 1 && Final(digest, context) == 1;
                if (done)
                {
                    return;
                }
            }
        }

        SHA256.HashData(data, destination);
    }

    private static bool NativeHash(byte prefix, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        var length = 1 + first.Length + second.Length;
        if (second.IsEmpty && first.Length is > CopyLimit and <= SmallInput)
        {
            // A leaf: OpenSSL takes the prefix into its block buffer and hashes the leaf's whole blocks in place, which
            // costs less than copying the leaf next to the prefix first.
            var leafContext = stackalloc byte[ContextBytes];
            fixed (byte* a = first)
            fixed (byte* output = destination)
            {
                return FastInit(leafContext) == 1 && FastUpdate(leafContext, &prefix, 1) == 1
                    && FastUpdate(leafContext, a, (nuint)first.Length) == 1 && FastFinal(output, leafContext) == 1;
            }
        }

        if (length <= SmallInput)
        {
            var input = stackalloc byte[length];
            input[0] = prefix;
            first.CopyTo(new Span<byte>(input + 1, first.Length));
            second.CopyTo(new Span<byte>(input + 1 + first.Length, second.Length));
            var small = stackalloc byte[ContextBytes];
            fixed (byte* output = destination)
            {
                return FastInit(small) == 1 && FastUpdate(small, input, (nuint)length) == 1 && FastFinal(output, small) == 1;
            }
        }

        var context = stackalloc byte[ContextBytes];
        fixed (byte* a = first)
        fixed (byte* b = second)
        fixed (byte* digest = destination)
        {
            return Init(context) == 1
                && Update(context, &prefix, 1) == 1
                && (first.IsEmpty || Update(context, a, (nuint)first.Length) == 1)
                && (second.IsEmpty || Update(context, b, (nuint)second.Length) == 1)
                && Final(digest, context) == 1;
        }
    }

    private static void ManagedHash(byte prefix, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData([prefix]);
        sha.AppendData(first);
        sha.AppendData(second);
        sha.GetHashAndReset(destination);
    }

    private static bool SelfTest()
    {
        try
        {
            ReadOnlySpan<byte> sample = "The quick brown fox jumps over the lazy dog"u8;
            Span<byte> expected = stackalloc byte[32];
            Span<byte> actual = stackalloc byte[32];
            ManagedHash(0x01, sample, sample[..7], expected);
            return NativeHash(0x01, sample, sample[..7], actual) && actual.SequenceEqual(expected);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }
}
