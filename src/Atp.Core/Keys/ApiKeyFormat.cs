using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Atp.Core.Keys;

/// <summary>
/// API key strings: <c>atp_</c> + 43 base62 characters (32 random bytes) + 6 base62 characters of checksum. The prefix
/// makes leaked keys recognisable to secret scanners; the checksum rejects typos and random guesses without a
/// database lookup.
/// </summary>
public static class ApiKeyFormat
{
    public const string Prefix = "atp_";
    private const int SecretBytes = 32;
    private const int BodyLength = 43;
    private const int ChecksumLength = 6;
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static int Length => Prefix.Length + BodyLength + ChecksumLength;

    /// <summary>A new random key.</summary>
    public static string Generate()
    {
        Span<byte> secret = stackalloc byte[SecretBytes];
        RandomNumberGenerator.Fill(secret);
        var body = Base62(secret, BodyLength);
        CryptographicOperations.ZeroMemory(secret);
        return Prefix + body + Checksum(body);
    }

    /// <summary>True when the string has the key shape and its checksum matches.</summary>
    public static bool IsWellFormed(string? key)
    {
        if (key is null || key.Length != Length || !key.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in key.AsSpan(Prefix.Length))
        {
            if (!char.IsAsciiLetterOrDigit(c))
            {
                return false;
            }
        }

        var body = key.Substring(Prefix.Length, BodyLength);
        var checksum = key.AsSpan(Prefix.Length + BodyLength);
        return CryptographicOperations.FixedTimeEquals(
            MemoryMarshalBytes(Checksum(body)),
            MemoryMarshalBytes(checksum.ToString()));
    }

    /// <summary>A new key id (<c>key_</c> + 16 hex digits): public, names the key in lists and revocations.</summary>
    public static string NewId() => "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>What is stored and looked up: SHA-256 of the whole key string.</summary>
    public static byte[] Hash(string key) => SHA256.HashData(Encoding.ASCII.GetBytes(key));

    private static string Checksum(string body)
    {
        var digest = SHA256.HashData(Encoding.ASCII.GetBytes(body));
        return Base62(digest.AsSpan(0, 4), ChecksumLength);
    }

    private static string Base62(ReadOnlySpan<byte> bytes, int length)
    {
        var value = new BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        var chars = new char[length];
        for (var i = length - 1; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value % 62)];
            value /= 62;
        }

        return new string(chars);
    }

    private static byte[] MemoryMarshalBytes(string text) => Encoding.ASCII.GetBytes(text);
}
