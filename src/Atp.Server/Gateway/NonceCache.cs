using System.Collections.Concurrent;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// The nonces of accepted signed requests, per key, remembered for twice the signature window (a request older than
/// the window is refused on its <c>created</c> alone, so older nonces need not be kept). Per node: with several
/// nodes behind a balancer a replay to another node within the window is not caught here.
/// </summary>
internal sealed class NonceCache(IOptions<AtpOptions> options, TimeProvider clock)
{
    // Each request removes at most this many expired nonces: more than the one it adds, so the cache drains as fast
    // as it fills, and no request pays for a sweep of millions of entries when the cache is full.
    private const int MaxEvictionsPerRequest = 64;

    private readonly ConcurrentDictionary<UInt128, long> _seen = new();

    // Insertion order = expiry order (every nonce is kept equally long), so the expired ones are at the head.
    private readonly ConcurrentQueue<(long Expires, UInt128 Fingerprint)> _expiry = new();
    private readonly TimeSpan _keep = options.Value.Auth.SignatureWindow * 2;
    private readonly int _capacity = options.Value.Auth.MaxRememberedNonces;

    /// <summary>Outcome of <see cref="TryUse"/>.</summary>
    public enum Result
    {
        Fresh,
        Replayed,
        Full,
    }

    /// <summary>How many nonces are remembered now.</summary>
    public int Count => _seen.Count;

    /// <summary>Records the nonce; <see cref="Result.Replayed"/> when this key used it before within the window.</summary>
    public Result TryUse(string keyId, string nonce)
    {
        var now = clock.GetUtcNow().UtcTicks;
        Evict(now);
        if (_seen.Count >= _capacity)
        {
            return Result.Full;
        }

        var fingerprint = Fingerprint(keyId, nonce);
        var expires = now + _keep.Ticks;
        if (!_seen.TryAdd(fingerprint, expires))
        {
            return Result.Replayed;
        }

        _expiry.Enqueue((expires, fingerprint));
        return Result.Fresh;
    }

    // 128 bits of SHA-256 over key id and nonce: a fixed 16 bytes per entry however long the nonce, and no
    // attacker-steerable collisions.
    private static UInt128 Fingerprint(string keyId, string nonce)
    {
        var text = keyId + "\n" + nonce;
        Span<byte> buffer = stackalloc byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var length = Encoding.UTF8.GetBytes(text, buffer);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(buffer[..length], digest);
        return BinaryPrimitives.ReadUInt128LittleEndian(digest);
    }

    private void Evict(long now)
    {
        for (var i = 0; i < MaxEvictionsPerRequest && _expiry.TryPeek(out var head) && head.Expires <= now; i++)
        {
            if (_expiry.TryDequeue(out var expired))
            {
                // Only the entry this queue item added: a concurrent dequeue may have taken the peeked one.
                _seen.TryRemove(new KeyValuePair<UInt128, long>(expired.Fingerprint, expired.Expires));
            }
        }
    }
}
