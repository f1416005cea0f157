using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Atp.Core.Classification;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Classification;

/// <summary>
/// The default <see cref="IKeyProvider"/>: one owner-only file per tenant, <c>{DataDirectory}/keys/tenants/{tenant}.key</c>,
/// holding the tenant's KEK and blind-index key (two base64 lines, 32 random bytes each), created on the tenant's first
/// classified event. Like the cell signing key and the cell KEK, the file is shared by the nodes of a cell and belongs in
/// its backups: without it no sealed field of the tenant opens again.
/// Wrapped data key: 0x01 ‖ nonce (12) ‖ tag (16) ‖ AES-256-GCM ciphertext of the key, with the tenant and key id as
/// associated data (a wrapped key copied to another row or tenant does not open).
/// </summary>
internal sealed class FileKeyProvider : IKeyProvider, IDisposable
{
    private const byte Version = 1;
    private const int KeySize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int HeaderSize = 1 + NonceSize + TagSize;

    private readonly string _directory;
    private readonly Lock _createGate = new();
    private readonly ConcurrentDictionary<string, TenantKeys> _tenants = new(StringComparer.Ordinal);

    public FileKeyProvider(IOptions<AtpOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys", "tenants");
    }

    public ValueTask<byte[]> WrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> dataKey, CancellationToken cancellationToken)
    {
        var keys = Load(tenantId);
        var wrapped = new byte[HeaderSize + dataKey.Length];
        wrapped[0] = Version;
        var nonce = wrapped.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        lock (keys.Gate)
        {
            keys.Kek.Encrypt(nonce, dataKey.Span, wrapped.AsSpan(HeaderSize), wrapped.AsSpan(1 + NonceSize, TagSize), AssociatedData(tenantId, keyId));
        }

        return ValueTask.FromResult(wrapped);
    }

    public ValueTask<byte[]> UnwrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> wrapped, CancellationToken cancellationToken)
    {
        var blob = wrapped.Span;
        if (blob.Length <= HeaderSize || blob[0] != Version)
        {
            throw new CryptographicException("A stored data key is not in the wrapped form this key provider writes.");
        }

        var keys = Load(tenantId);
        var key = new byte[blob.Length - HeaderSize];
        lock (keys.Gate)
        {
            keys.Kek.Decrypt(blob.Slice(1, NonceSize), blob[HeaderSize..], blob.Slice(1 + NonceSize, TagSize), key, AssociatedData(tenantId, keyId));
        }

        return ValueTask.FromResult(key);
    }

    public ValueTask<byte[]> GetBlindIndexKeyAsync(string tenantId, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Load(tenantId).BlindIndexKey);

    public void Dispose()
    {
        foreach (var keys in _tenants.Values)
        {
            keys.Kek.Dispose();
        }
    }

    private static byte[] AssociatedData(string tenantId, string keyId) => Encoding.UTF8.GetBytes($"atp:dk:v1\n{tenantId}\n{keyId}");

    private TenantKeys Load(string tenantId)
    {
        if (_tenants.TryGetValue(tenantId, out var keys))
        {
            return keys;
        }

        if (!Core.Tenants.TenantRules.IsValidId(tenantId))
        {
            throw new ArgumentException("Not a tenant id.", nameof(tenantId));
        }

        lock (_createGate)
        {
            if (_tenants.TryGetValue(tenantId, out keys))
            {
                return keys;
            }

            var path = Path.Combine(_directory, tenantId + ".key");
            if (!File.Exists(path))
            {
                Create(path);
            }

            var lines = File.ReadAllText(path, Encoding.ASCII).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var kek = lines.Length == 2 ? Convert.FromBase64String(lines[0]) : [];
            var blindIndexKey = lines.Length == 2 ? Convert.FromBase64String(lines[1]) : [];
            if (kek.Length != KeySize || blindIndexKey.Length != KeySize)
            {
                throw new InvalidOperationException($"The tenant key file {path} does not hold two {KeySize}-byte keys.");
            }

            keys = new TenantKeys(new AesGcm(kek, TagSize), blindIndexKey);
            CryptographicOperations.ZeroMemory(kek);
            _tenants[tenantId] = keys;
            return keys;
        }
    }

    // Written whole to a temporary name (owner-only, flushed) and then moved into place, so a crash never leaves a
    // half-written key file; a file another node created first wins and is read instead.
    private void Create(string path)
    {
        Directory.CreateDirectory(_directory);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        var kek = RandomNumberGenerator.GetBytes(KeySize);
        var blindIndexKey = RandomNumberGenerator.GetBytes(KeySize);
        OwnerOnlyFile.Write(temporary, Convert.ToBase64String(kek) + "\n" + Convert.ToBase64String(blindIndexKey) + "\n");
        CryptographicOperations.ZeroMemory(kek);
        CryptographicOperations.ZeroMemory(blindIndexKey);
        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }
    }

    // An AesGcm instance is not safe for concurrent use.
    private sealed record TenantKeys(AesGcm Kek, byte[] BlindIndexKey)
    {
        public Lock Gate { get; } = new();
    }
}
