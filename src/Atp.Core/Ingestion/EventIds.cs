using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Atp.Core.Ingestion;

/// <summary>
/// UUIDv7 ids (RFC 9562, section 5.7) for the events of one request from a single draw of random bytes.
/// <see cref="Guid.CreateVersion7(DateTimeOffset)"/> asks the kernel for randomness once per id, a system call per event
/// that showed in ingest profiles; one draw per request keeps the same layout and the same source.
/// </summary>
internal static class EventIds
{
    private const int RandomBytesPerId = 10; // 12 bits rand_a + 62 bits rand_b, drawn as 80 bits and masked
    private const int StackLimit = 128;

    /// <summary>Fills <paramref name="ids"/> with UUIDv7 values whose timestamp is <paramref name="at"/> (milliseconds since the Unix epoch).</summary>
    public static void FillVersion7(DateTimeOffset at, Span<Guid> ids)
    {
        var unixMilliseconds = at.ToUnixTimeMilliseconds();
        var bytes = ids.Length * RandomBytesPerId;
        Span<byte> random = ids.Length <= StackLimit ? stackalloc byte[bytes] : new byte[bytes];
        RandomNumberGenerator.Fill(random);
        Span<byte> id = stackalloc byte[16];
        Span<byte> timestamp = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(timestamp, unixMilliseconds);
        for (var i = 0; i < ids.Length; i++)
        {
            timestamp[2..].CopyTo(id); // unix_ts_ms: 48 bits, big-endian
            random.Slice(i * RandomBytesPerId, RandomBytesPerId).CopyTo(id[6..]);
            id[6] = (byte)(0x70 | (id[6] & 0x0F)); // version 7
            id[8] = (byte)(0x80 | (id[8] & 0x3F)); // variant 10
            ids[i] = new Guid(id, bigEndian: true);
        }
    }
}
