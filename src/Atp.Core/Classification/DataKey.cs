using System.Security.Cryptography;

namespace Atp.Core.Classification;

/// <summary>
/// An unwrapped data key. <see cref="NewlyWrapped"/> is set while the key is not yet known to be stored: every append
/// that uses it carries it, so no leaf sealed under it can become durable without it.
/// </summary>
public sealed class DataKey
{
    private static readonly byte[] NonceKeyLabel = "atp nonce key v1"u8.ToArray();

    public DataKey(string keyId, byte[] key, WrappedDataKey? newlyWrapped)
    {
        ArgumentNullException.ThrowIfNull(key);
        KeyId = keyId;
        Key = key;
        NewlyWrapped = newlyWrapped;

        // Synthetic nonces (re-sendable events) come from a key of their own, never from the encryption key itself.
        NonceKey = HMACSHA256.HashData(key, NonceKeyLabel);
    }

    public string KeyId { get; }

    public byte[] Key { get; }

    public byte[] NonceKey { get; }

    public WrappedDataKey? NewlyWrapped { get; }

    /// <summary>The same key, now known to be stored.</summary>
    public DataKey Stored() => NewlyWrapped is null ? this : new DataKey(KeyId, Key, null);
}
