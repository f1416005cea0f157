using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Atp.Core.Classification;

/// <summary>
/// A classified value as the leaf stores it: <c>atp:enc:v1:&lt;keyId&gt;:&lt;base64url(nonce ‖ ciphertext ‖ tag)&gt;</c>,
/// AES-256-GCM with a 12-byte nonce and a 16-byte tag over the value's RFC 8785 canonical JSON. The associated data
/// binds the tenant, the key id and the field's JSON pointer, so a token copied to another field or tenant does not open.
/// </summary>
public static class FieldToken
{
    public const string Prefix = "atp:enc:v1:";
    public const int NonceSize = 12;
    public const int TagSize = 16;

    /// <summary>Whether <paramref name="value"/> has the token's form (it may still fail to open).</summary>
    public static bool IsToken([NotNullWhen(true)] string? value) => value is not null && value.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Seals <paramref name="plaintext"/>, the field at <paramref name="jsonPointer"/>, under <paramref name="key"/> with the given nonce.</summary>
    public static string Seal(DataKey key, ReadOnlySpan<byte> nonce, string jsonPointer, ReadOnlySpan<byte> plaintext)
    {
        ArgumentNullException.ThrowIfNull(key);
        var length = NonceSize + plaintext.Length + TagSize;
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        var sealedBytes = rented.AsSpan(0, length);
        nonce.CopyTo(sealedBytes);
        lock (key.Gate)
        {
            key.Aes.Encrypt(nonce, plaintext, sealedBytes.Slice(NonceSize, plaintext.Length), sealedBytes[(NonceSize + plaintext.Length)..], key.AssociatedData(jsonPointer));
        }

        var token = string.Concat(Prefix, key.KeyId, ":", Base64Url.EncodeToString(sealedBytes));
        System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        return token;
    }

    /// <summary>Splits a token into its key id and sealed bytes; false when it is not a well-formed token.</summary>
    public static bool TryParse(string? token, [NotNullWhen(true)] out string? keyId, [NotNullWhen(true)] out byte[]? sealedBytes)
    {
        keyId = null;
        sealedBytes = null;
        if (!IsToken(token))
        {
            return false;
        }

        var rest = token.AsSpan(Prefix.Length);
        var colon = rest.IndexOf(':');
        if (colon <= 0)
        {
            return false;
        }

        try
        {
            sealedBytes = Base64Url.DecodeFromChars(rest[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return false;
        }

        if (sealedBytes.Length < NonceSize + TagSize)
        {
            sealedBytes = null;
            return false;
        }

        keyId = rest[..colon].ToString();
        return true;
    }

    /// <summary>The canonical JSON the token seals; false when it was altered, moved, or sealed under another key.</summary>
    public static bool TryOpen(DataKey key, string jsonPointer, ReadOnlySpan<byte> sealedBytes, [NotNullWhen(true)] out byte[]? plaintext)
    {
        ArgumentNullException.ThrowIfNull(key);
        plaintext = new byte[sealedBytes.Length - NonceSize - TagSize];
        try
        {
            lock (key.Gate)
            {
                key.Aes.Decrypt(sealedBytes[..NonceSize], sealedBytes[NonceSize..^TagSize], sealedBytes[^TagSize..], plaintext, key.AssociatedData(jsonPointer));
            }

            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            plaintext = null;
            return false;
        }
    }
}
