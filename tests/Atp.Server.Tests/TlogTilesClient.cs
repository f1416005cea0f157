using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;

namespace Atp.Server.Tests;

/// <summary>
/// An independent C2SP tlog-tiles client (https://c2sp.org/tlog-tiles), written from the spec for the interop tests:
/// its own path encoding and its own RFC 6962 hashing with <see cref="SHA256"/>, nothing from Atp.Integrity or Atp.Core.
/// It fetches every tile of the checkpoint's tree, checks each full tile against the hash one level up, each entry
/// bundle against its level-0 tile, and the root recomputed from the tiles against the checkpoint.
/// </summary>
internal sealed class TlogTilesClient(HttpClient http, string prefix)
{
    private const int Width = 256;

    public sealed record Result(ulong Size, byte[] Root, IReadOnlyList<byte[]> Entries, int TilesFetched);

    /// <summary>tlog-tiles: zero-padded 3-digit elements, all but the last prefixed with 'x'.</summary>
    public static string EncodeIndex(ulong n)
    {
        var text = n.ToString(CultureInfo.InvariantCulture);
        text = text.PadLeft((text.Length + 2) / 3 * 3, '0');
        var parts = Enumerable.Range(0, text.Length / 3).Select(i => text.Substring(i * 3, 3)).ToArray();
        return string.Join('/', parts.Select((p, i) => i < parts.Length - 1 ? "x" + p : p));
    }

    public static string TilePath(string level, ulong n, int width) =>
        $"tile/{level}/{EncodeIndex(n)}" + (width == Width ? "" : $".p/{width}");

    public async Task<Result> FetchAndVerifyAsync()
    {
        var note = await http.GetStringAsync(prefix + "checkpoint");
        var lines = note.Split('\n');
        var size = ulong.Parse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture);
        var root = Convert.FromBase64String(lines[2]);
        var fetched = 0;

        // Every tile of every level, as the spec defines them: level l holds floor(size / 256^l) hashes.
        var levels = new List<byte[][]>();
        for (var level = 0; level < 8 && (size >> (8 * level)) > 0; level++)
        {
            var count = size >> (8 * level);
            var hashes = new byte[count][];
            for (ulong n = 0; n * Width < count; n++)
            {
                var width = (int)Math.Min(Width, count - (n * Width));
                var tile = await http.GetByteArrayAsync(prefix + TilePath(level.ToString(CultureInfo.InvariantCulture), n, width));
                fetched++;
                Assert.Equal(width * 32, tile.Length);
                for (var i = 0; i < width; i++)
                {
                    hashes[(n * Width) + (ulong)i] = tile[(i * 32)..((i + 1) * 32)];
                }
            }

            levels.Add(hashes);
        }

        // A hash at level l+1 is the MTH of a full tile (256 hashes) of level l.
        for (var level = 1; level < levels.Count; level++)
        {
            for (var j = 0; j < levels[level].Length; j++)
            {
                Assert.Equal(levels[level][j], Mth(levels[level - 1].AsSpan(j * Width, Width)));
            }
        }

        var entries = new List<byte[]>();
        for (ulong n = 0; n * Width < size; n++)
        {
            var width = (int)Math.Min(Width, size - (n * Width));
            var bundle = await http.GetByteArrayAsync(prefix + TilePath("entries", n, width));
            fetched++;
            var offset = 0;
            for (var i = 0; i < width; i++)
            {
                var length = BinaryPrimitives.ReadUInt16BigEndian(bundle.AsSpan(offset));
                var entry = bundle[(offset + 2)..(offset + 2 + length)];
                offset += 2 + length;
                Assert.Equal(levels[0][(n * Width) + (ulong)i], LeafHash(entry));
                entries.Add(entry);
            }

            Assert.Equal(bundle.Length, offset);
        }

        var computed = size == 0 ? SHA256.HashData([]) : RootFromTiles(levels, 0, size);
        Assert.Equal(Convert.ToBase64String(root), Convert.ToBase64String(computed));
        return new Result(size, root, entries, fetched);
    }

    /// <summary>RFC 6962 MTH(D[lo:hi]), taking a whole aligned 256^l-leaf subtree from the level-l tile hashes.</summary>
    private static byte[] RootFromTiles(List<byte[][]> levels, ulong lo, ulong hi)
    {
        for (var level = levels.Count - 1; level >= 0; level--)
        {
            var span = 1UL << (8 * level);
            if (hi - lo == span && lo % span == 0)
            {
                return levels[level][lo / span];
            }
        }

        var k = 1UL;
        while (k * 2 < hi - lo)
        {
            k *= 2;
        }

        return NodeHash(RootFromTiles(levels, lo, lo + k), RootFromTiles(levels, lo + k, hi));
    }

    private static byte[] Mth(ReadOnlySpan<byte[]> hashes)
    {
        if (hashes.Length == 1)
        {
            return hashes[0];
        }

        var k = 1;
        while (k * 2 < hashes.Length)
        {
            k *= 2;
        }

        return NodeHash(Mth(hashes[..k]), Mth(hashes[k..]));
    }

    public static byte[] LeafHash(byte[] entry) => SHA256.HashData([0, .. entry]);

    private static byte[] NodeHash(byte[] left, byte[] right) => SHA256.HashData([1, .. left, .. right]);

    /// <summary>RFC 6962 MTH straight from the entries: the naive reference the tiles must agree with.</summary>
    public static byte[] RootOfEntries(IReadOnlyList<byte[]> entries) =>
        entries.Count == 0 ? SHA256.HashData([]) : Mth(entries.Select(LeafHash).ToArray());
}
