using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Atp.Core.Classification;

/// <summary>
/// An unwrapped data key of one tenant. <see cref="NewlyWrapped"/> is set while the key is not yet known to be stored:
/// every append that uses it carries it, so no leaf sealed under it can become durable without it.
/// </summary>
/// <remarks>
/// The AES-GCM key schedule and the associated data of each field are set up once per key, not once per event: they
/// were most of the cost of sealing when built per call. An <see cref="AesGcm"/> instance is not safe for concurrent
/// use, hence <see cref="Gate"/>.
/// </remarks>
public sealed class DataKey
{
    private static readonly byte[] NonceKeyLabel = "atp nonce key v1"u8.ToArray();

    private readonly ConcurrentDictionary<string, byte[]> _associatedData;

    public DataKey(string tenantId, string keyId, byte[] key, WrappedDataKey? newlyWrapped)
    {
        ArgumentNullException.ThrowIfNull(key);
        TenantId = tenantId;
        KeyId = keyId;
        NewlyWrapped = newlyWrapped;
        Aes = new AesGcm(key, FieldToken.TagSize);

        // Synthetic nonces (re-sendable events) come from a key of their own, never from the encryption key itself.
        NonceKey = HMACSHA256.HashData(key, NonceKeyLabel);
        _associatedData = new(StringComparer.Ordinal);
    }

    private DataKey(DataKey pending)
    {
        TenantId = pending.TenantId;
        KeyId = pending.KeyId;
        Aes = pending.Aes;
        Gate = pending.Gate;
        NonceKey = pending.NonceKey;
        StoredForm = pending.NewlyWrapped?.Wrapped;
        _associatedData = pending._associatedData;
    }

    // When the store last said it holds this key as StoredForm (Environment.TickCount64, ms).
    private long _confirmedAt = Environment.TickCount64;

    /// <summary>The wrapped form the store holds this key as, once stored; what a re-check compares against.</summary>
    public byte[]? StoredForm { get; init; }

    /// <summary>Whether the store confirmed this key within <paramref name="interval"/>.</summary>
    public bool ConfirmedWithin(TimeSpan interval) => Environment.TickCount64 - Volatile.Read(ref _confirmedAt) < (long)interval.TotalMilliseconds;

    /// <summary>The store still holds this key (as <see cref="StoredForm"/>) now.</summary>
    public void Confirmed() => Volatile.Write(ref _confirmedAt, Environment.TickCount64);

    public string TenantId { get; }

    public string KeyId { get; }

    public AesGcm Aes { get; }

    /// <summary>Held around every use of <see cref="Aes"/>.</summary>
    public Lock Gate { get; } = new();

    public byte[] NonceKey { get; }

    public WrappedDataKey? NewlyWrapped { get; }

    /// <summary>The same key, now known to be stored.</summary>
    public DataKey Stored() => NewlyWrapped is null ? this : new DataKey(this);

    /// <summary>What a token of this key in the field at <paramref name="jsonPointer"/> is bound to (see <see cref="FieldToken"/>).</summary>
    public byte[] AssociatedData(string jsonPointer) =>
        _associatedData.GetOrAdd(jsonPointer, static (pointer, key) => Encoding.UTF8.GetBytes($"atp:enc:v1\n{key.TenantId}\n{key.KeyId}\n{pointer}"), this);
}
