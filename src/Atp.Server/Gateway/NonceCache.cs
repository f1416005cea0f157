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
    private readonly ConcurrentDictionary<UInt128, long> _seen = new();
    private readonly TimeSpan _keep = options.Value.Auth.SignatureWindow * 2;
    private readonly int _capacity = options.Value.Auth.MaxRememberedNonces;
    private long _nextSweepTicks;

    /// <summary>Outcome of <see cref="TryUse"/>.</summary>
    public enum Result
    {
        Fresh,
        Replayed,
        Full,
    }

    /// <summary>Records the nonce; <see cref="Result.Replayed"/> when this key used it before within the window.</summary>
    public Result TryUse(string keyId, string nonce)
    {
        var now = clock.GetUtcNow().UtcTicks;
        if (now >= Interlocked.Read(ref _nextSweepTicks) || _seen.Count >= _capacity)
        {
            Sweep(now);
        }

        if (_seen.Count >= _capacity)
        {
            return Result.Full;
        }

        return _seen.TryAdd(Fingerprint(keyId, nonce), now + _keep.Ticks) ? Result.Fresh : Result.Replayed;
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

    private void Sweep(long now)
    {
        Interlocked.Exchange(ref _nextSweepTicks, now + TimeSpan.FromSeconds(10).Ticks);
        foreach (var (fingerprint, expires) in _seen)
        {
            if (expires <= now)
            {
                _seen.TryRemove(fingerprint, out _);
            }
        }
    }
}
