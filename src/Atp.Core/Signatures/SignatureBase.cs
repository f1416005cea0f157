using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Atp.Core.Signatures;

/// <summary>RFC 9421 §2.5 signature base, and the §3.3.3 HMAC-SHA256 over it.</summary>
internal static class SignatureBase
{
    /// <summary>
    /// One line <c>"&lt;component&gt;": &lt;value&gt;</c> per covered component, in order, then
    /// <c>"@signature-params": &lt;signatureParams&gt;</c> with no newline after it; <c>signatureParams</c> is the
    /// Signature-Input member value exactly as received (or as the signer writes it).
    /// </summary>
    public static bool TryCreate(IReadOnlyList<string> components, string signatureParams, SignatureComponents message, [NotNullWhen(true)] out string? signatureBase, [NotNullWhen(false)] out string? failure)
    {
        var builder = new StringBuilder(128 + signatureParams.Length);
        foreach (var name in components)
        {
            if (!message.TryResolve(name, out var value, out failure))
            {
                signatureBase = null;
                return false;
            }

            // Component names are lowercase field names or '@' names (TryResolve refuses others), so they need no escaping.
            builder.Append('"').Append(name).Append("\": ").Append(value).Append('\n');
        }

        builder.Append("\"@signature-params\": ").Append(signatureParams);
        signatureBase = builder.ToString();
        failure = null;
        return true;
    }

    /// <summary>HMAC-SHA256 of the base's ASCII bytes into <paramref name="mac"/> (32 bytes).</summary>
    public static void Mac(ReadOnlySpan<byte> key, string signatureBase, Span<byte> mac)
    {
        // The base is ASCII (TryResolve refuses other characters; Signature-Input is parsed as ASCII), one byte a char.
        byte[]? rented = null;
        var bytes = signatureBase.Length <= 1024 ? stackalloc byte[signatureBase.Length] : (rented = ArrayPool<byte>.Shared.Rent(signatureBase.Length)).AsSpan(0, signatureBase.Length);
        try
        {
            Encoding.ASCII.GetBytes(signatureBase, bytes);
            HMACSHA256.HashData(key, bytes, mac);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>True when <paramref name="signature"/> is the HMAC of the base, compared in constant time.</summary>
    public static bool VerifyMac(ReadOnlySpan<byte> key, string signatureBase, ReadOnlySpan<byte> signature)
    {
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Mac(key, signatureBase, expected);

        // FixedTimeEquals returns early only on a length difference, which says nothing about the key.
        return CryptographicOperations.FixedTimeEquals(expected, signature);
    }
}
