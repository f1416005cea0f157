using System.Globalization;
using System.Text;
using NSec.Cryptography;

namespace Atp.Integrity;

/// <summary>
/// An Ed25519 signing key for signed notes. Its text form is the Go <c>sumdb/note</c> signer key,
/// <c>PRIVATE+KEY+&lt;name&gt;+&lt;key id&gt;+&lt;base64(0x01 ‖ 32-byte seed)&gt;</c>, so keys move between ATP and other
/// tlog tooling. The text form is a secret: keep it out of logs and error messages.
/// </summary>
public sealed class NoteSigner : IDisposable
{
    private const string Prefix = "PRIVATE+KEY+";
    private const int SeedLength = 32;

    private const int SignatureLength = 64;

    // Exactly one of the two is set: a key held in this process, or a signing function whose key lives elsewhere (an HSM).
    private readonly Key? _key;
    private readonly Func<byte[], byte[]>? _externalSign;
    private readonly PublicKey? _externalPublicKey;

    private NoteSigner(string name, Key key)
    {
        Name = name;
        _key = key;
        Verifier = NoteVerifier.FromPublicKey(name, key.PublicKey);
    }

    private NoteSigner(string name, PublicKey publicKey, Func<byte[], byte[]> externalSign)
    {
        Name = name;
        _externalSign = externalSign;
        _externalPublicKey = publicKey;
        Verifier = NoteVerifier.FromPublicKey(name, publicKey);
    }

    /// <summary>Key name written on signature lines.</summary>
    public string Name { get; }

    /// <summary>Key id (see <see cref="NoteVerifier.KeyId"/>).</summary>
    public uint KeyId => Verifier.KeyId;

    /// <summary>The matching verifier; publish <see cref="NoteVerifier.VerifierKey"/>.</summary>
    public NoteVerifier Verifier { get; }

    /// <summary>A new random key.</summary>
    public static NoteSigner Generate(string name)
    {
        ThrowIfInvalidName(name);
        return new NoteSigner(name, Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>A key from its 32-byte Ed25519 seed (RFC 8032 private key).</summary>
    public static NoteSigner FromSeed(string name, ReadOnlySpan<byte> seed)
    {
        ThrowIfInvalidName(name);
        if (seed.Length != SeedLength)
        {
            throw new ArgumentException($"An Ed25519 seed is {SeedLength} bytes.", nameof(seed));
        }

        return new NoteSigner(name, Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>
    /// A signer whose Ed25519 private key never enters this process (an HSM or KMS key): <paramref name="sign"/> returns
    /// the 64-byte RFC 8032 (pure Ed25519) signature of the message it is given. Every signature it returns is checked
    /// against <paramref name="publicKey"/> before use, so a device signing with another key fails loudly instead of
    /// publishing checkpoints nobody can verify. <see cref="ExportSignerKey"/> is not available for such a signer.
    /// </summary>
    public static NoteSigner FromExternalKey(string name, ReadOnlySpan<byte> publicKey, Func<byte[], byte[]> sign)
    {
        ThrowIfInvalidName(name);
        ArgumentNullException.ThrowIfNull(sign);
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var imported) || imported is null)
        {
            throw new ArgumentException("An Ed25519 public key is 32 bytes.", nameof(publicKey));
        }

        return new NoteSigner(name, imported, sign);
    }

    /// <summary>Parses a signer key string. The exception message never contains the key material.</summary>
    /// <exception cref="FormatException">Malformed key, or key id not matching the key.</exception>
    public static NoteSigner Parse(string signerKey)
    {
        ArgumentNullException.ThrowIfNull(signerKey);
        var text = signerKey.Trim();
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException("a signer key starts with PRIVATE+KEY+");
        }

        var parts = text[Prefix.Length..].Split('+', 3);
        if (parts.Length != 3 || !KeyName.IsValid(parts[0]) || !NoteVerifier.TryParseKeyId(parts[1], out var keyId))
        {
            throw new FormatException("a signer key has the form PRIVATE+KEY+<name>+<key id>+<base64 key>");
        }

        if (!StrictBase64.TryDecode(parts[2], out var blob) || blob.Length != 1 + SeedLength || blob[0] != NoteVerifier.Ed25519Type)
        {
            throw new FormatException("the signer key is not base64 of an Ed25519 (type 0x01) seed");
        }

        var signer = FromSeed(parts[0], blob.AsSpan(1));
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(blob);
        if (signer.KeyId != keyId)
        {
            signer.Dispose();
            throw new FormatException("the signer key's id does not match its name and key");
        }

        return signer;
    }

    /// <summary>The secret signer key string (for writing to an owner-only key file).</summary>
    /// <exception cref="InvalidOperationException">The key is held outside this process (<see cref="FromExternalKey"/>).</exception>
    public string ExportSignerKey()
    {
        if (_key is null)
        {
            throw new InvalidOperationException("This signer's key is held outside the process and cannot be exported.");
        }

        var blob = new byte[1 + SeedLength];
        blob[0] = NoteVerifier.Ed25519Type;
        _key.Export(KeyBlobFormat.RawPrivateKey).CopyTo(blob, 1);
        var text = string.Create(CultureInfo.InvariantCulture, $"{Prefix}{Name}+{KeyId:x8}+{Convert.ToBase64String(blob)}");
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(blob);
        return text;
    }

    /// <summary>Signs note text (which must already be valid note text).</summary>
    public NoteSignature Sign(ReadOnlySpan<byte> text)
    {
        if (_key is not null)
        {
            return new(Name, KeyId, SignatureAlgorithm.Ed25519.Sign(_key, text));
        }

        var signature = _externalSign!(text.ToArray());
        if (signature is null || signature.Length != SignatureLength || !SignatureAlgorithm.Ed25519.Verify(_externalPublicKey!, text, signature))
        {
            throw new System.Security.Cryptography.CryptographicException($"The external signer of key {Name} returned a signature that does not verify under its public key.");
        }

        return new(Name, KeyId, signature);
    }

    /// <summary>Signs note text given as a string (UTF-8 encoded).</summary>
    public NoteSignature Sign(string text) => Sign(Encoding.UTF8.GetBytes(text));

    /// <inheritdoc/>
    public void Dispose() => _key?.Dispose();

    /// <inheritdoc/>
    public override string ToString() => Verifier.VerifierKey;

    private static void ThrowIfInvalidName(string name)
    {
        if (!KeyName.IsValid(name))
        {
            throw new ArgumentException("A key name must be non-empty and contain no spaces or '+'.", nameof(name));
        }
    }
}
