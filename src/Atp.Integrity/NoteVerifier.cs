using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Atp.Integrity;

/// <summary>
/// An Ed25519 verifier key for signed notes, written <c>&lt;name&gt;+&lt;key id, 8 hex&gt;+&lt;base64(0x01 ‖ public key)&gt;</c>
/// (C2SP signed-note, signature type 0x01).
/// </summary>
public sealed class NoteVerifier
{
    internal const byte Ed25519Type = 0x01;
    private const int PublicKeyLength = 32;

    private readonly PublicKey _publicKey;

    private NoteVerifier(string name, uint keyId, PublicKey publicKey, string verifierKey)
    {
        Name = name;
        KeyId = keyId;
        _publicKey = publicKey;
        VerifierKey = verifierKey;
    }

    /// <summary>The key name signatures carry.</summary>
    public string Name { get; }

    /// <summary>The key id: first four bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).</summary>
    public uint KeyId { get; }

    /// <summary>The verifier key string this verifier was made from.</summary>
    public string VerifierKey { get; }

    /// <summary>Parses a verifier key string; throws <see cref="FormatException"/> with the reason when it is malformed.</summary>
    public static NoteVerifier Parse(string verifierKey) =>
        TryParse(verifierKey, out var verifier, out var error) ? verifier : throw new FormatException(error);

    /// <summary>Parses a verifier key string, checking that the key id matches the name and key.</summary>
    public static bool TryParse(string? verifierKey, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NoteVerifier? verifier, out string error)
    {
        verifier = null;
        // Base64 may itself contain '+': the name and the id cannot, so split off only those two.
        var parts = (verifierKey ?? string.Empty).Split('+', 3);
        if (parts.Length != 3)
        {
            error = "a verifier key has the form <name>+<key id>+<base64 key>";
            return false;
        }

        var (name, idHex, keyText) = (parts[0], parts[1], parts[2]);
        if (!KeyName.IsValid(name))
        {
            error = "the verifier key's name is empty or contains a space or '+'";
            return false;
        }

        if (!TryParseKeyId(idHex, out var keyId))
        {
            error = "the verifier key's id is not 8 lowercase hex digits";
            return false;
        }

        if (!StrictBase64.TryDecode(keyText, out var blob) || blob.Length != 1 + PublicKeyLength || blob[0] != Ed25519Type)
        {
            error = "the verifier key is not base64 of an Ed25519 (type 0x01) public key";
            return false;
        }

        if (ComputeKeyId(name, blob.AsSpan(1)) != keyId)
        {
            error = "the verifier key's id does not match its name and public key";
            return false;
        }

        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, blob.AsSpan(1), KeyBlobFormat.RawPublicKey, out var publicKey) || publicKey is null)
        {
            error = "the verifier key's public key is not a valid Ed25519 point";
            return false;
        }

        verifier = new NoteVerifier(name, keyId, publicKey, verifierKey!);
        error = string.Empty;
        return true;
    }

    /// <summary>True when <paramref name="signature"/> is this key's Ed25519 signature of <paramref name="text"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> text, ReadOnlySpan<byte> signature) =>
        SignatureAlgorithm.Ed25519.Verify(_publicKey, text, signature);

    /// <inheritdoc/>
    public override string ToString() => VerifierKey;

    internal static NoteVerifier FromPublicKey(string name, PublicKey publicKey)
    {
        var raw = publicKey.Export(KeyBlobFormat.RawPublicKey);
        var keyId = ComputeKeyId(name, raw);
        var blob = new byte[1 + raw.Length];
        blob[0] = Ed25519Type;
        raw.CopyTo(blob, 1);
        var text = string.Create(CultureInfo.InvariantCulture, $"{name}+{keyId:x8}+{Convert.ToBase64String(blob)}");
        return new NoteVerifier(name, keyId, publicKey, text);
    }

    internal static uint ComputeKeyId(string name, ReadOnlySpan<byte> publicKey)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[nameBytes.Length + 2 + publicKey.Length];
        nameBytes.CopyTo(input, 0);
        input[nameBytes.Length] = 0x0A;
        input[nameBytes.Length + 1] = Ed25519Type;
        publicKey.CopyTo(input.AsSpan(nameBytes.Length + 2));
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(input, digest);
        return BinaryPrimitives.ReadUInt32BigEndian(digest);
    }

    internal static bool TryParseKeyId(string hex, out uint keyId)
    {
        keyId = 0;
        foreach (var c in hex)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        return hex.Length == 8 && uint.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out keyId);
    }
}
