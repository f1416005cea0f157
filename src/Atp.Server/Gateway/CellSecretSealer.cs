using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// Seals secrets the server must be able to read back (the HMAC secrets of signing keys) under the cell's
/// key-encryption key, so the database alone never discloses them. A seam for KMS- or HSM-backed providers.
/// </summary>
public interface ISecretSealer
{
    /// <summary>Encrypts <paramref name="secret"/>, bound to <paramref name="keyId"/>: the blob opens only for that key.</summary>
    byte[] Seal(ReadOnlySpan<byte> secret, string keyId);

    /// <summary>Decrypts into <paramref name="secret"/>; false when the blob was altered, moved to another key, or sealed under another KEK.</summary>
    bool TryUnseal(ReadOnlySpan<byte> sealedSecret, string keyId, Span<byte> secret);
}

/// <summary>
/// AES-256-GCM under a 32-byte KEK in <c>{DataDirectory}/keys/cell-kek.key</c> (created owner-only on first start;
/// nodes of one cell share it like the signing key). Blob: version (1) ‖ nonce (12) ‖ tag (16) ‖ ciphertext; the
/// key id is associated data, so a sealed secret copied to another key's row does not open.
/// </summary>
internal sealed class FileSecretSealer : ISecretSealer, IDisposable
{
    private const byte Version = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int HeaderSize = 1 + NonceSize + TagSize;
    private readonly AesGcm _aes;

    // AesGcm instances are not safe for concurrent use; signed requests unseal on many threads at once.
    private readonly Lock _gate = new();

    public FileSecretSealer(IOptions<AtpOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys");
        var path = Path.Combine(directory, "cell-kek.key");
        Directory.CreateDirectory(directory);
        byte[] kek;
        if (File.Exists(path))
        {
            kek = Convert.FromBase64String(File.ReadAllText(path, Encoding.ASCII).Trim());
            if (kek.Length != 32)
            {
                throw new InvalidOperationException($"The key-encryption key in {path} is not 32 bytes.");
            }
        }
        else
        {
            kek = RandomNumberGenerator.GetBytes(32);
            Integrity.OwnerOnlyFile.Write(path, Convert.ToBase64String(kek) + "\n");
        }

        _aes = new AesGcm(kek, TagSize);
        CryptographicOperations.ZeroMemory(kek);
    }

    public byte[] Seal(ReadOnlySpan<byte> secret, string keyId)
    {
        var blob = new byte[HeaderSize + secret.Length];
        blob[0] = Version;
        var nonce = blob.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        lock (_gate)
        {
            _aes.Encrypt(nonce, secret, blob.AsSpan(HeaderSize), blob.AsSpan(1 + NonceSize, TagSize), Encoding.UTF8.GetBytes(keyId));
        }

        return blob;
    }

    public bool TryUnseal(ReadOnlySpan<byte> sealedSecret, string keyId, Span<byte> secret)
    {
        if (sealedSecret.Length < HeaderSize || sealedSecret[0] != Version || secret.Length != sealedSecret.Length - HeaderSize)
        {
            return false;
        }

        try
        {
            lock (_gate)
            {
                _aes.Decrypt(sealedSecret.Slice(1, NonceSize), sealedSecret[HeaderSize..], sealedSecret.Slice(1 + NonceSize, TagSize), secret, Encoding.UTF8.GetBytes(keyId));
            }

            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(secret);
            return false;
        }
    }

    /// <summary>Length of the secret a blob holds (for sizing the output buffer); -1 when the blob is too short.</summary>
    public static int SecretLength(ReadOnlySpan<byte> sealedSecret) => sealedSecret.Length >= HeaderSize ? sealedSecret.Length - HeaderSize : -1;

    public void Dispose() => _aes.Dispose();
}
