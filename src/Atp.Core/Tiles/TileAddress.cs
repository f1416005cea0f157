using System.Globalization;
using System.Text;
using Atp.Integrity;

namespace Atp.Core.Tiles;

/// <summary>
/// One resource of the C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles): hash tile <c>tile/&lt;L&gt;/&lt;N&gt;</c> or
/// entry bundle <c>tile/entries/&lt;N&gt;</c>, full (<see cref="Width"/> 256) or partial (<c>.p/&lt;W&gt;</c>, 1–255).
/// The server parses request paths with it and <c>atp mirror</c> builds URLs and file names with it, so both agree on
/// the one encoding.
/// </summary>
public readonly record struct TileAddress(int Level, ulong Index, int Width, bool IsEntries)
{
    /// <summary>Hashes (or entries) in a full tile: a tile is a subtree of height 8.</summary>
    public const int FullWidth = 256;

    /// <summary>tlog-tiles: &lt;L&gt; is 0–63.</summary>
    public const int MaxLevel = 63;

    private const int TileHeight = 8;

    /// <summary>Whether this is a full tile (never changes once it exists).</summary>
    public bool IsFull => Width == FullWidth;

    /// <summary>The tile's path relative to the log prefix, e.g. <c>tile/0/x001/234.p/5</c> or <c>tile/entries/000</c>.</summary>
    public string Path
    {
        get
        {
            var path = new StringBuilder("tile/");
            path.Append(IsEntries ? "entries" : Level.ToString(CultureInfo.InvariantCulture)).Append('/').Append(FormatIndex(Index));
            if (!IsFull)
            {
                path.Append(".p/").Append(Width.ToString(CultureInfo.InvariantCulture));
            }

            return path.ToString();
        }
    }

    /// <summary>The Merkle node of hash <paramref name="position"/> in this hash tile: MTH of 256^L leaves (tlog-tiles "Merkle Tree").</summary>
    public NodeId NodeAt(int position) => new(TileHeight * Level, (Index * FullWidth) + (ulong)position);

    /// <summary>The first leaf index an entry bundle (or level-0 tile) holds.</summary>
    public ulong FirstEntry => Index * FullWidth;

    /// <summary>
    /// How many hashes tile <paramref name="index"/> of <paramref name="level"/> holds in a tree of <paramref name="treeSize"/>
    /// leaves: 256 for a full tile, 1–255 for the partial one on the right edge, 0 when the tile does not exist.
    /// Entry bundles have the level-0 width.
    /// </summary>
    public static int WidthIn(int level, ulong index, ulong treeSize)
    {
        var shift = TileHeight * level;
        if (level is < 0 or > MaxLevel || shift >= 64 || index > (ulong.MaxValue / FullWidth))
        {
            return 0;
        }

        // Hashes at this level are the complete subtrees of 256^level leaves; a partial one is never hashed upward.
        var hashes = treeSize >> shift;
        var first = index * FullWidth;
        return hashes <= first ? 0 : (int)Math.Min(FullWidth, hashes - first);
    }

    /// <summary>Every hash tile and entry bundle of the tree of <paramref name="treeSize"/> leaves, lowest level first, entries last.</summary>
    public static IEnumerable<TileAddress> AllFor(ulong treeSize)
    {
        for (var level = 0; level * TileHeight < 64 && (treeSize >> (level * TileHeight)) > 0; level++)
        {
            var hashes = treeSize >> (level * TileHeight);
            var tiles = (hashes + FullWidth - 1) / FullWidth;
            for (ulong n = 0; n < tiles; n++)
            {
                yield return new TileAddress(level, n, WidthIn(level, n, treeSize), IsEntries: false);
            }
        }

        for (ulong n = 0; n < (treeSize + FullWidth - 1) / FullWidth; n++)
        {
            yield return new TileAddress(0, n, WidthIn(0, n, treeSize), IsEntries: true);
        }
    }

    /// <summary>tlog-tiles index encoding: zero-padded 3-digit elements, all but the last prefixed with <c>x</c> (1234067 → <c>x001/x234/067</c>).</summary>
    public static string FormatIndex(ulong index)
    {
        var groups = new List<string>();
        do
        {
            groups.Add((index % 1000).ToString("000", CultureInfo.InvariantCulture));
            index /= 1000;
        }
        while (index > 0);

        groups.Reverse();
        return string.Join('/', groups.Select((g, i) => i < groups.Count - 1 ? "x" + g : g));
    }

    /// <summary>
    /// Parses the part after <c>tile/&lt;L&gt;/</c> or <c>tile/entries/</c>: <c>&lt;N&gt;[.p/&lt;W&gt;]</c> in its one canonical
    /// encoding. Returns null and a reason for anything else (leading <c>x000</c> elements, missing padding, a width with
    /// leading zeros or outside 1–255, an index beyond 64 bits), so one tile has one URL.
    /// </summary>
    public static string? TryParse(string? level, string? indexPath, out TileAddress address)
    {
        address = default;
        var isEntries = level == "entries";
        var levelNumber = 0;
        if (!isEntries && !TryParseDecimal(level, MaxLevel, out levelNumber))
        {
            return "level: a decimal number 0-63 without leading zeros, or 'entries'.";
        }

        if (string.IsNullOrEmpty(indexPath))
        {
            return "index: missing.";
        }

        var width = FullWidth;
        var partial = indexPath.IndexOf(".p/", StringComparison.Ordinal);
        if (partial >= 0)
        {
            if (!TryParseDecimal(indexPath[(partial + 3)..], FullWidth - 1, out width) || width == 0)
            {
                return "width: a partial tile's width is a decimal number 1-255 without leading zeros.";
            }

            indexPath = indexPath[..partial];
        }

        var elements = indexPath.Split('/');
        ulong index = 0;
        for (var i = 0; i < elements.Length; i++)
        {
            var element = elements[i];
            var last = i == elements.Length - 1;
            var digits = last ? element : element.StartsWith('x') ? element[1..] : null;
            if (digits is not { Length: 3 } || !digits.All(char.IsAsciiDigit))
            {
                return "index: zero-padded 3-digit elements, all but the last starting with 'x' (1234067 is x001/x234/067).";
            }

            if (i == 0 && !last && digits == "000")
            {
                return "index: no leading x000 element; each tile has one path.";
            }

            var value = (ulong)int.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
            if (index > (ulong.MaxValue - value) / 1000)
            {
                return "index: beyond any 64-bit log.";
            }

            index = (index * 1000) + value;
        }

        address = new TileAddress(levelNumber, index, width, isEntries);
        return null;
    }

    private static bool TryParseDecimal(string? text, int max, out int value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 3 || (text.Length > 1 && text[0] == '0') || !text.All(char.IsAsciiDigit))
        {
            return false;
        }

        value = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return value <= max;
    }
}
