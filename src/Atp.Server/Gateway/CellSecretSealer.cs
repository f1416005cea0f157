using System.Globalization;
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
/// AES-256-GCM under the cell's key-encryption keys (KEKs), shared by the nodes of a cell like the signing key:
/// <c>{DataDirectory}/keys/cell-kek.key</c> (the first KEK, id <c>00000000</c>, created owner-only on first start) and,
/// after rotations, <c>keys/kek/{id}.key</c>, with <c>keys/kek/current</c> naming the KEK that seals new secrets.
/// Blob version 2: 0x02 ‖ KEK id (4, big-endian) ‖ nonce (12) ‖ tag (16) ‖ ciphertext. Version 1 (before KEK rotation):
/// 0x01 ‖ nonce ‖ tag ‖ ciphertext, always under the first KEK; it still opens. The API key id is associated data in
/// both, so a sealed secret copied to another key's row does not open.
/// </summary>
internal sealed class FileSecretSealer : ISecretSealer, IDisposable
{
    /// <summary>Id of the KEK in <c>keys/cell-kek.key</c>, the only one a version-1 blob can be sealed under.</summary>
    public const uint FirstKekId = 0;

    private const byte LegacyVersion = 1;
    private const byte Version = 2;
    private const int KekSize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int LegacyHeaderSize = 1 + NonceSize + TagSize;
    private const int HeaderSize = 1 + 4 + NonceSize + TagSize;

    private readonly string _directory;
    private readonly string _ringDirectory;
    private readonly Lock _reloadGate = new();

    // Replaced whole (copy on write) when a KEK is added or retired, so readers never lock for the dictionary.
    private volatile Ring _ring;

    public FileSecretSealer(IOptions<AtpOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys");
        _ringDirectory = Path.Combine(_directory, "kek");
        Directory.CreateDirectory(_directory);
        var first = FirstKekPath;
        if (!File.Exists(first) && !File.Exists(CurrentPath))
        {
            Integrity.OwnerOnlyFile.Write(first, Convert.ToBase64String(RandomNumberGenerator.GetBytes(KekSize)) + "\n");
        }

        _ring = Load();
    }

    /// <summary>The KEK that seals new secrets.</summary>
    public uint CurrentKekId => _ring.Current;

    /// <summary>Every KEK this node can open blobs with, oldest id order not implied.</summary>
    public IReadOnlyCollection<uint> KnownKekIds => _ring.Keys.Keys.ToArray();

    private string FirstKekPath => Path.Combine(_directory, "cell-kek.key");

    private string CurrentPath => Path.Combine(_ringDirectory, "current");

    public byte[] Seal(ReadOnlySpan<byte> secret, string keyId)
    {
        // Sealing is rare (a signing key is created or rotated); reading the current KEK's name each time lets a node
        // follow a rotation made on another node of the cell without a restart.
        var ring = RefreshIfRotated();
        var kek = ring.Keys[ring.Current];
        var blob = new byte[HeaderSize + secret.Length];
        blob[0] = Version;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(1, 4), ring.Current);
        var nonce = blob.AsSpan(5, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        lock (kek.Gate)
        {
            kek.Aes.Encrypt(nonce, secret, blob.AsSpan(HeaderSize), blob.AsSpan(5 + NonceSize, TagSize), Encoding.UTF8.GetBytes(keyId));
        }

        return blob;
    }

    public bool TryUnseal(ReadOnlySpan<byte> sealedSecret, string keyId, Span<byte> secret)
    {
        if (!TryReadHeader(sealedSecret, out var kekId, out var headerSize) || secret.Length != sealedSecret.Length - headerSize)
        {
            return false;
        }

        if (!_ring.Keys.TryGetValue(kekId, out var kek))
        {
            // Another node may have rotated to a KEK this one has not loaded yet.
            if (!Reload().Keys.TryGetValue(kekId, out kek))
            {
                return false;
            }
        }

        var nonceAt = headerSize - NonceSize - TagSize;
        try
        {
            lock (kek.Gate)
            {
                kek.Aes.Decrypt(sealedSecret.Slice(nonceAt, NonceSize), sealedSecret[headerSize..], sealedSecret.Slice(nonceAt + NonceSize, TagSize), secret, Encoding.UTF8.GetBytes(keyId));
            }

            return true;
        }
        catch (Exception e) when (e is AuthenticationTagMismatchException or ObjectDisposedException)
        {
            // ObjectDisposedException: the KEK was retired while this request held it; its blob is no longer stored.
            CryptographicOperations.ZeroMemory(secret);
            return false;
        }
    }

    /// <summary>The KEK a blob is sealed under (version 1: the first KEK); false for a blob too short or of an unknown version.</summary>
    public static bool TryGetKekId(ReadOnlySpan<byte> sealedSecret, out uint kekId) => TryReadHeader(sealedSecret, out kekId, out _);

    /// <summary>True for a blob sealed before KEK ids existed (version 1, always under the first KEK).</summary>
    public static bool IsLegacy(ReadOnlySpan<byte> sealedSecret) => sealedSecret.Length >= LegacyHeaderSize && sealedSecret[0] == LegacyVersion;

    /// <summary>Length of the secret a blob holds (for sizing the output buffer); -1 when the blob is not a sealed secret.</summary>
    public static int SecretLength(ReadOnlySpan<byte> sealedSecret) =>
        TryReadHeader(sealedSecret, out _, out var headerSize) ? sealedSecret.Length - headerSize : -1;

    /// <summary>
    /// Adds a new random KEK and makes it current: its file is written (owner-only, flushed) before <c>kek/current</c>
    /// is atomically replaced to name it, so a crash leaves either the old or the new KEK current, never a missing one.
    /// </summary>
    public uint AddKek()
    {
        lock (_reloadGate)
        {
            Directory.CreateDirectory(_ringDirectory);
            uint id;
            do
            {
                id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(RandomNumberGenerator.GetBytes(4));
            }
            while (id == FirstKekId || _ring.Keys.ContainsKey(id) || File.Exists(KekPath(id)));

            var kek = RandomNumberGenerator.GetBytes(KekSize);
            Integrity.OwnerOnlyFile.Write(KekPath(id), Convert.ToBase64String(kek) + "\n");
            CryptographicOperations.ZeroMemory(kek);
            var temporary = CurrentPath + ".tmp";
            File.Delete(temporary);
            Integrity.OwnerOnlyFile.Write(temporary, FormatId(id) + "\n");
            File.Move(temporary, CurrentPath, overwrite: true);
            _ring = LoadLocked();
            return id;
        }
    }

    /// <summary>Forgets a KEK that is not current and deletes its file; the caller has checked no stored secret uses it.</summary>
    public bool RetireKek(uint kekId)
    {
        lock (_reloadGate)
        {
            var ring = LoadLocked();
            if (kekId == ring.Current || !ring.Keys.ContainsKey(kekId))
            {
                return false;
            }

            File.Delete(kekId == FirstKekId ? FirstKekPath : KekPath(kekId));
            _ring = LoadLocked();
            ring.Dispose(exceptFor: _ring);
            return true;
        }
    }

    public static string FormatId(uint kekId) => kekId.ToString("x8", CultureInfo.InvariantCulture);

    public static bool TryParseId(string? text, out uint kekId) =>
        uint.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out kekId) && text!.Length == 8;

    public void Dispose() => _ring.Dispose(exceptFor: null);

    private static bool TryReadHeader(ReadOnlySpan<byte> blob, out uint kekId, out int headerSize)
    {
        kekId = FirstKekId;
        headerSize = 0;
        if (blob.Length >= LegacyHeaderSize && blob[0] == LegacyVersion)
        {
            headerSize = LegacyHeaderSize;
            return true;
        }

        if (blob.Length >= HeaderSize && blob[0] == Version)
        {
            kekId = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(blob.Slice(1, 4));
            headerSize = HeaderSize;
            return true;
        }

        return false;
    }

    private string KekPath(uint kekId) => Path.Combine(_ringDirectory, FormatId(kekId) + ".key");

    private Ring RefreshIfRotated()
    {
        var ring = _ring;
        return File.Exists(CurrentPath) && TryParseId(File.ReadAllText(CurrentPath, Encoding.ASCII).Trim(), out var current) && current != ring.Current ? Reload() : ring;
    }

    private Ring Reload()
    {
        lock (_reloadGate)
        {
            var previous = _ring;
            var ring = LoadLocked();

            // Instances still in use by a reader of the previous ring stay alive: only KEKs that disappeared are disposed.
            _ring = ring;
            previous.Dispose(exceptFor: ring);
            return ring;
        }
    }

    private Ring Load()
    {
        lock (_reloadGate)
        {
            return LoadLocked();
        }
    }

    private Ring LoadLocked()
    {
        var existing = _ring;
        var keys = new Dictionary<uint, Kek>();
        void Add(uint id, string path)
        {
            if (existing is not null && existing.Keys.TryGetValue(id, out var known))
            {
                keys[id] = known;
                return;
            }

            var kek = Convert.FromBase64String(File.ReadAllText(path, Encoding.ASCII).Trim());
            if (kek.Length != KekSize)
            {
                throw new InvalidOperationException($"The key-encryption key in {path} is not {KekSize} bytes.");
            }

            keys[id] = new Kek(new AesGcm(kek, TagSize));
            CryptographicOperations.ZeroMemory(kek);
        }

        if (File.Exists(FirstKekPath))
        {
            Add(FirstKekId, FirstKekPath);
        }

        if (Directory.Exists(_ringDirectory))
        {
            foreach (var path in Directory.EnumerateFiles(_ringDirectory, "*.key"))
            {
                if (TryParseId(Path.GetFileNameWithoutExtension(path), out var id) && id != FirstKekId)
                {
                    Add(id, path);
                }
            }
        }

        var current = FirstKekId;
        if (File.Exists(CurrentPath) && !TryParseId(File.ReadAllText(CurrentPath, Encoding.ASCII).Trim(), out current))
        {
            throw new InvalidOperationException($"{CurrentPath} does not name a KEK (8 hex digits).");
        }

        if (!keys.ContainsKey(current))
        {
            throw new InvalidOperationException($"The current key-encryption key {FormatId(current)} is missing from {_directory}.");
        }

        return new Ring(keys, current);
    }

    // An AesGcm instance is not safe for concurrent use; signed requests unseal on many threads at once.
    private sealed record Kek(AesGcm Aes)
    {
        public Lock Gate { get; } = new();
    }

    private sealed record Ring(Dictionary<uint, Kek> Keys, uint Current)
    {
        public void Dispose(Ring? exceptFor)
        {
            foreach (var (id, kek) in Keys)
            {
                if (exceptFor is null || !exceptFor.Keys.TryGetValue(id, out var kept) || !ReferenceEquals(kept, kek))
                {
                    lock (kek.Gate)
                    {
                        kek.Aes.Dispose();
                    }
                }
            }
        }
    }
}
