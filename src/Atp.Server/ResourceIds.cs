using System.Security.Cryptography;

namespace Atp.Server;

/// <summary>Ids of the resources a tenant admin creates (legal holds, erasure requests).</summary>
internal static class ResourceIds
{
    /// <summary><paramref name="prefix"/> and 26 characters of RFC 4648 base32 (lowercase): 128 random bits, as ATP's other ids.</summary>
    public static string New(string prefix)
    {
        const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random);
        Span<char> id = stackalloc char[26];
        int buffer = 0, bits = 0, written = 0;
        foreach (var b in random)
        {
            buffer = ((buffer << 8) | b) & 0xFFFF;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                id[written++] = Alphabet[(buffer >> bits) & 31];
            }
        }

        id[written] = Alphabet[(buffer << (5 - bits)) & 31];
        return prefix + new string(id);
    }
}
