using Atp.Core.Ingestion;

namespace Atp.Core.Tests.Ingestion;

public sealed class EventIdsTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 26, 22, 55, 1, 234, TimeSpan.Zero);

    [Fact]
    public void Ids_are_version_7_with_the_RFC_9562_variant_and_the_time_in_milliseconds()
    {
        var ids = new Guid[300];
        EventIds.FillVersion7(At, ids);
        var reference = Guid.CreateVersion7(At).ToByteArray(bigEndian: true);
        foreach (var id in ids)
        {
            Assert.Equal(7, id.Version);
            Assert.Equal(0x80, id.ToByteArray(bigEndian: true)[8] & 0xC0);
            Assert.Equal(reference.AsSpan(0, 6).ToArray(), id.ToByteArray(bigEndian: true).AsSpan(0, 6).ToArray());
        }
    }

    [Fact]
    public void Every_id_of_a_draw_and_of_later_draws_is_distinct_and_random_bits_vary()
    {
        var seen = new HashSet<Guid>();
        var lastBytes = new HashSet<byte>();
        for (var draw = 0; draw < 20; draw++)
        {
            var ids = new Guid[draw == 0 ? 2000 : 100]; // above and below the stack limit
            EventIds.FillVersion7(At, ids);
            foreach (var id in ids)
            {
                Assert.True(seen.Add(id), $"{id} was drawn twice");
                lastBytes.Add(id.ToByteArray(bigEndian: true)[15]);
            }
        }

        Assert.True(lastBytes.Count > 200, $"only {lastBytes.Count} distinct values in the last random byte over {seen.Count} ids");
    }

    [Fact]
    public void Ids_of_a_later_millisecond_sort_after_those_of_an_earlier_one()
    {
        var earlier = new Guid[50];
        var later = new Guid[50];
        EventIds.FillVersion7(At, earlier);
        EventIds.FillVersion7(At.AddMilliseconds(1), later);
        Assert.True(earlier.Max() < later.Min());
    }
}
