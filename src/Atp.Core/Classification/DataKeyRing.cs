using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Compliance.Redaction;
using Microsoft.Extensions.Options;

namespace Atp.Core.Classification;

/// <summary>
/// The data keys of every tenant: one random AES-256 key per (tenant, data subject), found by a key id that is a keyed
/// hash of the subject (so the store never learns who a key belongs to), kept wrapped in the store and unwrapped once
/// into a bounded in-memory cache, so ingest pays no KEK unwrap per event.
/// </summary>
/// <remarks>
/// No leaf may become durable without its key: a key created here stays "pending" (and rides along with every append
/// that uses it) until an append carrying it commits; only then does it move to the cache. A key looked up after a
/// miss is read from the store under a per-key-id lock, so one node never creates two keys for one id. Two nodes that
/// race are caught by the store (the second insert of an id with other bytes fails its append; <see cref="Abandon"/>
/// then drops the loser, and the retry finds the winner).
/// </remarks>
public sealed class DataKeyRing
{
    public const int DataKeySize = 32;
    private const int KeyIdBytes = 16;
    private const int Stripes = 64;

    private readonly IKeyProvider _keys;
    private readonly IDataKeyStore _store;
    private readonly int _capacity;
    private readonly ConcurrentDictionary<(string Tenant, string KeyId), DataKey> _cache = new();
    private readonly ConcurrentDictionary<(string Tenant, string KeyId), DataKey> _pending = new();

    // Stored keys by subject as well, so the hot path skips the key id's HMAC; same bound as the cache.
    private readonly ConcurrentDictionary<(string Tenant, string Subject), DataKey> _bySubject = new();
    private readonly ConcurrentDictionary<string, byte[]> _blindIndexKeys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Redactor> _secretRedactors = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim[] _locks = [.. Enumerable.Range(0, Stripes).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>
    /// How long a stored key is used from memory before the store is asked whether it still holds it: an erasure on
    /// another node of the cell (which destroys the key there) stops this node sealing under it or opening with it
    /// within this time.
    /// </summary>
    public static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(5);

    public DataKeyRing(IKeyProvider keys, IDataKeyStore store, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _keys = keys;
        _store = store;
        _capacity = capacity;
    }

    /// <summary>Unwrapped keys held in memory now.</summary>
    public int CachedKeys => _cache.Count;

    /// <summary>The key id of a subject: base64url of the first 16 bytes of HMAC-SHA256 under the tenant's blind-index key.</summary>
    public async ValueTask<string> KeyIdOfAsync(string tenantId, string subject, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subject);
        var blindKey = await BlindIndexKeyAsync(tenantId, cancellationToken).ConfigureAwait(false);
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(blindKey, Encoding.UTF8.GetBytes("subject\0" + subject), mac);
        return Base64Url.EncodeToString(mac[..KeyIdBytes]);
    }

    /// <summary>The subject's data key, created (pending) when the subject has none yet.</summary>
    public async ValueTask<DataKey> ForSubjectAsync(string tenantId, string subject, CancellationToken cancellationToken)
    {
        if (_bySubject.TryGetValue((tenantId, subject), out var known))
        {
            if (await ConfirmedAsync(known, cancellationToken).ConfigureAwait(false) is { } confirmed)
            {
                return confirmed;
            }

            _bySubject.TryRemove(KeyValuePair.Create((tenantId, subject), known));
        }

        var keyId = await KeyIdOfAsync(tenantId, subject, cancellationToken).ConfigureAwait(false);
        var key = await GetAsync(tenantId, keyId, create: true, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException("A data key was neither found nor created.");

        // Only a stored key: a pending one must keep riding along with appends until one commits.
        if (key.NewlyWrapped is null)
        {
            if (_bySubject.Count >= _capacity)
            {
                _bySubject.Clear();
            }

            _bySubject[(tenantId, subject)] = key;
        }

        return key;
    }

    /// <summary>The data key stored under <paramref name="keyId"/> (for reading a token), or null when the tenant has none.</summary>
    public ValueTask<DataKey?> FindAsync(string tenantId, string keyId, CancellationToken cancellationToken) =>
        GetAsync(tenantId, keyId, create: false, cancellationToken);

    /// <summary>An append carrying these keys committed: they are stored now.</summary>
    public void Stored(string tenantId, IEnumerable<WrappedDataKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var key in keys)
        {
            // Cached before it leaves the pending set, so a reader always finds it in one of the two.
            if (_pending.TryGetValue((tenantId, key.KeyId), out var pending) && pending.NewlyWrapped is { } wrapped && wrapped.Wrapped.AsSpan().SequenceEqual(key.Wrapped))
            {
                Cache(tenantId, pending.Stored());
                _pending.TryRemove((tenantId, key.KeyId), out _);
            }
        }
    }

    /// <summary>
    /// Drops every copy this node holds of a subject's key (an erasure destroys it in the store): no later event is
    /// sealed under it and no later read opens a token with it; the subject's next event gets a new key.
    /// </summary>
    public void Forget(string tenantId, string subject, string keyId)
    {
        _bySubject.TryRemove((tenantId, subject), out _);
        _cache.TryRemove((tenantId, keyId), out _);
        _pending.TryRemove((tenantId, keyId), out _);
    }

    /// <summary>An append carrying these keys failed: forget them, so the next use reads the store again.</summary>
    public void Abandon(string tenantId, IEnumerable<WrappedDataKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var key in keys)
        {
            _pending.TryRemove((tenantId, key.KeyId), out _);
        }
    }

    private async ValueTask<DataKey?> GetAsync(string tenantId, string keyId, bool create, CancellationToken cancellationToken)
    {
        if (Known(tenantId, keyId) is { } known && await ConfirmedAsync(known, cancellationToken).ConfigureAwait(false) is { } confirmed)
        {
            return confirmed;
        }

        var gate = _locks[(int)((uint)StringComparer.Ordinal.GetHashCode(keyId) % Stripes)];
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Known(tenantId, keyId) is { } raced && await ConfirmedAsync(raced, cancellationToken).ConfigureAwait(false) is { } confirmedRaced)
            {
                return confirmedRaced;
            }

            if (await _store.FindDataKeyAsync(tenantId, keyId, cancellationToken).ConfigureAwait(false) is { } stored)
            {
                var unwrapped = await _keys.UnwrapAsync(tenantId, keyId, stored, cancellationToken).ConfigureAwait(false);
                var found = new DataKey(tenantId, keyId, unwrapped, newlyWrapped: null) { StoredForm = stored };
                CryptographicOperations.ZeroMemory(unwrapped);
                Cache(tenantId, found);
                return found;
            }

            if (!create)
            {
                return null;
            }

            var key = RandomNumberGenerator.GetBytes(DataKeySize);
            var wrapped = await _keys.WrapAsync(tenantId, keyId, key, cancellationToken).ConfigureAwait(false);
            var created = new DataKey(tenantId, keyId, key, new WrappedDataKey(keyId, wrapped));
            CryptographicOperations.ZeroMemory(key);
            _pending[(tenantId, keyId)] = created;
            return created;
        }
        finally
        {
            gate.Release();
        }
    }

    // A stored key used from memory longer than RecheckAfter is confirmed with the store first: gone (erased on another
    // node) or replaced (that node's next event made a new key under the id), it is dropped and null returned. A pending
    // key is not stored yet and rides along with its append.
    private async ValueTask<DataKey?> ConfirmedAsync(DataKey key, CancellationToken cancellationToken)
    {
        if (key.NewlyWrapped is not null || key.ConfirmedWithin(RecheckAfter))
        {
            return key;
        }

        var stored = await _store.FindDataKeyAsync(key.TenantId, key.KeyId, cancellationToken).ConfigureAwait(false);
        if (stored is not null && key.StoredForm is { } form && form.AsSpan().SequenceEqual(stored))
        {
            key.Confirmed();
            return key;
        }

        _cache.TryRemove(KeyValuePair.Create((key.TenantId, key.KeyId), key));
        return null;
    }

    private DataKey? Known(string tenantId, string keyId) =>
        _cache.TryGetValue((tenantId, keyId), out var cached) ? cached
        : _pending.TryGetValue((tenantId, keyId), out var pending) ? pending
        : null;

    private void Cache(string tenantId, DataKey key)
    {
        // Bounded the simple way: when full, start over; every key is still in the store and unwraps again on next use.
        if (_cache.Count >= _capacity)
        {
            _cache.Clear();
        }

        _cache[(tenantId, key.KeyId)] = key;
    }

    /// <summary>
    /// The tenant's redactor of <c>secret</c> values: HMAC-SHA256 (Microsoft.Extensions.Compliance.Redaction's
    /// <see cref="HmacRedactor"/>) under a key derived from the tenant's blind-index key, so equal secrets of one tenant
    /// get equal fingerprints and nothing else can be learnt from them.
    /// </summary>
    public async ValueTask<Redactor> SecretRedactorAsync(string tenantId, CancellationToken cancellationToken)
    {
        if (_secretRedactors.TryGetValue(tenantId, out var redactor))
        {
            return redactor;
        }

        var blindKey = await BlindIndexKeyAsync(tenantId, cancellationToken).ConfigureAwait(false);
        var key = HMACSHA256.HashData(blindKey, "secret-fingerprint\0"u8);
        redactor = new HmacRedactor(Options.Create(new HmacRedactorOptions { Key = Convert.ToBase64String(key), KeyId = 1 }));
        CryptographicOperations.ZeroMemory(key);
        return _secretRedactors.GetOrAdd(tenantId, redactor);
    }

    private async ValueTask<byte[]> BlindIndexKeyAsync(string tenantId, CancellationToken cancellationToken)
    {
        if (_blindIndexKeys.TryGetValue(tenantId, out var key))
        {
            return key;
        }

        key = await _keys.GetBlindIndexKeyAsync(tenantId, cancellationToken).ConfigureAwait(false);
        return _blindIndexKeys.GetOrAdd(tenantId, key);
    }
}
