using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Atp.Core.Query;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Query;

/// <summary>
/// Opaque, tamper-proof search cursors: where the last page ended, the snapshot size the first page pinned, the
/// order and a digest of the filters, MACed with HMAC-SHA256 under a cell key (<c>keys/cursor.key</c>, shared by the
/// nodes of a cell like the other keys). A cursor altered, forged, or reused with other filters or another tenant
/// is refused.
/// </summary>
internal sealed class QueryCursor
{
    private const byte Version = 1;
    private const int PayloadSize = 1 + 1 + 8 + 8 + 8 + 16;
    private const int MacSize = 16;
    private readonly byte[] _key;

    public QueryCursor(IOptions<AtpOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys");
        var path = Path.Combine(directory, "cursor.key");
        Directory.CreateDirectory(directory);
        if (!File.Exists(path))
        {
            try
            {
                OwnerOnlyFile.Write(path, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another node of the cell created it first.
            }
        }

        _key = Convert.FromBase64String(File.ReadAllText(path, Encoding.ASCII).Trim());
    }

    /// <summary>What a cursor carries.</summary>
    public readonly record struct State(bool Ascending, ulong SnapshotSize, QueryPosition After);

    public string Encode(State state, string filterDigestSource)
    {
        Span<byte> buffer = stackalloc byte[PayloadSize + MacSize];
        buffer[0] = Version;
        buffer[1] = state.Ascending ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt64BigEndian(buffer[2..], state.SnapshotSize);
        BinaryPrimitives.WriteInt64BigEndian(buffer[10..], state.After.OccurredAtTicks);
        BinaryPrimitives.WriteUInt64BigEndian(buffer[18..], state.After.Index);
        Digest(filterDigestSource, buffer.Slice(26, 16));
        Mac(buffer[..PayloadSize], buffer[PayloadSize..]);
        return Base64Url.EncodeToString(buffer);
    }

    public bool TryDecode(string cursor, string filterDigestSource, out State state)
    {
        state = default;
        Span<byte> buffer = stackalloc byte[PayloadSize + MacSize];
        if (cursor.Length != Base64Url.GetEncodedLength(buffer.Length) || !Base64Url.IsValid(cursor) || Base64Url.DecodeFromChars(cursor, buffer) != buffer.Length)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[MacSize];
        Mac(buffer[..PayloadSize], expected);
        Span<byte> digest = stackalloc byte[16];
        Digest(filterDigestSource, digest);
        if (!CryptographicOperations.FixedTimeEquals(expected, buffer[PayloadSize..]) || buffer[0] != Version || !buffer.Slice(26, 16).SequenceEqual(digest))
        {
            return false;
        }

        state = new State(
            buffer[1] == 1,
            BinaryPrimitives.ReadUInt64BigEndian(buffer[2..]),
            new QueryPosition(BinaryPrimitives.ReadInt64BigEndian(buffer[10..]), BinaryPrimitives.ReadUInt64BigEndian(buffer[18..])));
        return true;
    }

    private void Mac(ReadOnlySpan<byte> payload, Span<byte> mac)
    {
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(_key, payload, full);
        full[..MacSize].CopyTo(mac);
    }

    private static void Digest(string source, Span<byte> digest)
    {
        Span<byte> full = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(source), full);
        full[..16].CopyTo(digest);
    }
}
