using Atp.Core.Tiles;

namespace Atp.Core.Tests.Tiles;

public sealed class TileAddressTests
{
    [Theory]
    [InlineData(0UL, "000")]
    [InlineData(7UL, "007")]
    [InlineData(999UL, "999")]
    [InlineData(1000UL, "x001/000")]
    [InlineData(1234067UL, "x001/x234/067")]
    [InlineData(ulong.MaxValue, "x018/x446/x744/x073/x709/x551/615")]
    public void Encodes_indexes_as_the_spec_does_and_parses_them_back(ulong index, string encoded)
    {
        Assert.Equal(encoded, TileAddress.FormatIndex(index));

        Assert.Null(TileAddress.TryParse("0", encoded, out var parsed));
        Assert.Equal(new TileAddress(0, index, TileAddress.FullWidth, IsEntries: false), parsed);
    }

    [Fact]
    public void Paths_name_level_or_entries_and_the_width_of_a_partial_tile()
    {
        Assert.Equal("tile/2/x001/234.p/5", new TileAddress(2, 1234, 5, IsEntries: false).Path);
        Assert.Equal("tile/entries/000", new TileAddress(0, 0, 256, IsEntries: true).Path);

        Assert.Null(TileAddress.TryParse("entries", "x001/234.p/255", out var parsed));
        Assert.Equal(new TileAddress(0, 1234, 255, IsEntries: true), parsed);
    }

    [Theory]
    [InlineData("00", "000")]
    [InlineData("64", "000")]
    [InlineData("1a", "000")]
    [InlineData("", "000")]
    [InlineData("0", "")]
    [InlineData("0", "1")]
    [InlineData("0", "0000")]
    [InlineData("0", "x000/001")]
    [InlineData("0", "001/000")]
    [InlineData("0", "x01/000")]
    [InlineData("0", "x001/x000")]
    [InlineData("0", "000.p/0")]
    [InlineData("0", "000.p/256")]
    [InlineData("0", "000.p/007")]
    [InlineData("0", "000.p/")]
    [InlineData("0", "x018/x446/x744/x073/x709/x551/616")]
    [InlineData("0", "+12")]
    [InlineData("0", "١٢٣")]
    public void Refuses_every_non_canonical_path(string level, string index)
    {
        Assert.NotNull(TileAddress.TryParse(level, index, out _));
    }

    [Fact]
    public void A_tree_of_70000_has_the_tiles_the_spec_lists()
    {
        // tlog-tiles: 273 full level-0 tiles, one partial of width 112, one full level-1 tile, one partial level-1 tile
        // of width 17, and one partial level-2 tile of width 1.
        var tiles = TileAddress.AllFor(70_000).ToList();
        var hashTiles = tiles.Where(t => !t.IsEntries).ToList();

        Assert.Equal(273, hashTiles.Count(t => t.Level == 0 && t.IsFull));
        Assert.Equal(112, Assert.Single(hashTiles, t => t.Level == 0 && !t.IsFull).Width);
        Assert.Single(hashTiles, t => t.Level == 1 && t.IsFull);
        Assert.Equal(17, Assert.Single(hashTiles, t => t.Level == 1 && !t.IsFull).Width);
        Assert.Equal(1, Assert.Single(hashTiles, t => t.Level == 2).Width);
        Assert.Equal(hashTiles.Where(t => t.Level == 0), tiles.Where(t => t.IsEntries).Select(t => t with { IsEntries = false }));
    }

    [Theory]
    [InlineData(0UL, 0, 0UL, 0)]
    [InlineData(1UL, 0, 0UL, 1)]
    [InlineData(256UL, 0, 0UL, 256)]
    [InlineData(256UL, 1, 0UL, 1)]
    [InlineData(256UL, 0, 1UL, 0)]
    [InlineData(257UL, 0, 1UL, 1)]
    [InlineData(65_536UL, 2, 0UL, 1)]
    [InlineData(65_535UL, 2, 0UL, 0)]
    [InlineData(ulong.MaxValue, 7, 0UL, 255)]
    [InlineData(ulong.MaxValue, 8, 0UL, 0)]
    [InlineData(1000UL, 63, 0UL, 0)]
    public void Width_of_a_tile_follows_from_the_tree_size(ulong size, int level, ulong index, int width)
    {
        Assert.Equal(width, TileAddress.WidthIn(level, index, size));
    }
}
