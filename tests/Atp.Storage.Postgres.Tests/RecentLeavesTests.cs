namespace Atp.Storage.Postgres.Tests;

public sealed class RecentLeavesTests
{
    private static byte[] Leaf(int i) => [(byte)i, (byte)(i >> 8), 7, 7];

    [Fact]
    public void A_contiguous_run_is_taken_once_and_what_was_taken_is_forgotten()
    {
        var recent = new RecentLeaves(1024);
        for (var i = 10; i < 15; i++)
        {
            recent.Add("acme", i, Leaf(i));
        }

        var taken = recent.Take("acme", 10, 12);

        Assert.NotNull(taken);
        Assert.Equal([Leaf(10), Leaf(11), Leaf(12)], taken);
        Assert.Null(recent.Take("acme", 10, 12));
        Assert.Equal([Leaf(13), Leaf(14)], recent.Take("acme", 13, 14));
        Assert.Equal(0, recent.Bytes);
    }

    [Fact]
    public void A_gap_starts_the_run_over_and_a_range_not_wholly_held_is_a_miss_that_still_forgets()
    {
        var recent = new RecentLeaves(1024);
        recent.Add("acme", 0, Leaf(0));
        recent.Add("acme", 1, Leaf(1));
        recent.Add("acme", 5, Leaf(5)); // another node appended 2–4
        recent.Add("acme", 6, Leaf(6));
        recent.Add("globex", 0, Leaf(100));

        Assert.Null(recent.Take("acme", 0, 1));
        Assert.Null(recent.Take("acme", 4, 5));
        Assert.Equal([Leaf(6)], recent.Take("acme", 6, 6));
        Assert.Equal([Leaf(100)], recent.Take("globex", 0, 0));
        Assert.Equal(0, recent.Bytes);
    }

    [Fact]
    public void When_full_the_tenant_is_dropped_and_read_from_the_log_and_capacity_zero_holds_nothing()
    {
        var recent = new RecentLeaves(10);
        recent.Add("acme", 0, Leaf(0));
        recent.Add("acme", 1, Leaf(1));
        Assert.Equal(8, recent.Bytes);

        recent.Add("acme", 2, Leaf(2));

        Assert.Equal(0, recent.Bytes);
        Assert.Null(recent.Take("acme", 0, 1));
        var none = new RecentLeaves(0);
        none.Add("acme", 0, Leaf(0));
        Assert.Null(none.Take("acme", 0, 0));
    }
}
