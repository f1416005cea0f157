using Atp.Core.Query;
using Atp.Core.Storage;

namespace Atp.Storage.Contract;

/// <summary>
/// Wall-clock jumps (an operator or NTP setting the clock) while the store runs: the wall clock jumps, the monotonic
/// clock does not. Idempotency-Keys are pruned as the server's sealer prunes them (retention before the earliest
/// reading of an <see cref="AnchoredClock"/> made at start); projection runs as the server's projector runs it.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);

    [Fact]
    public async Task A_forward_wall_clock_jump_of_a_day_does_not_forget_a_key_used_a_minute_ago()
    {
        await CreateTenantsAsync(TenantA);
        var sealerClock = new AnchoredClock(Clock);
        var original = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), Claim("retry-1", "body-1")));

        Clock.Advance(TimeSpan.FromMinutes(1));
        Clock.Jump(TimeSpan.FromHours(24));

        Assert.Equal(0, await Store.PruneIdempotencyKeysAsync(sealerClock.Earliest() - Retention, CancellationToken.None));
        var retry = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), Claim("retry-1", "body-1")));
        Assert.True(retry.Replayed);
        Assert.Equal(original.Receipts, retry.Receipts);
        Assert.Equal(2UL, (await HeadAsync(TenantA)).Size);

        // Once a day has really passed, the key goes.
        Clock.Advance(Retention);
        Assert.Equal(1, await Store.PruneIdempotencyKeysAsync(sealerClock.Earliest() - Retention, CancellationToken.None));
    }

    [Fact]
    public async Task A_key_used_while_the_wall_clock_was_set_back_is_not_forgotten_when_it_is_set_right()
    {
        await CreateTenantsAsync(TenantA);
        var sealerClock = new AnchoredClock(Clock);

        // Set back a day, the key is used; a minute later the clock is set right again.
        Clock.Jump(-Retention);
        var original = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("retry-2", "body-2")));
        Clock.Advance(TimeSpan.FromMinutes(1));
        Clock.Jump(Retention);

        Assert.Equal(0, await Store.PruneIdempotencyKeysAsync(sealerClock.Earliest() - Retention, CancellationToken.None));
        var retry = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("retry-2", "body-2")));
        Assert.True(retry.Replayed);
        Assert.Equal(original.Receipts, retry.Receipts);
        Assert.Equal(1UL, (await HeadAsync(TenantA)).Size);
    }

    [Fact]
    public async Task A_backward_wall_clock_jump_neither_stalls_projection_nor_hides_the_lag()
    {
        await CreateTenantsAsync(TenantA);
        var loop = new ProjectionLoop(Store, Clock);
        await AppendEventsAsync("document.read", "document.update", "user.login");

        // First sight: the entries linger.
        Assert.True(await loop.StepAsync(CancellationToken.None) > TimeSpan.Zero);
        Assert.Equal(0, loop.Projected);

        // Set back an hour; then the linger time passes. The entries now look an hour younger than zero by the wall clock.
        Clock.Jump(TimeSpan.FromHours(-1));
        Clock.Advance(ProjectionLoop.Linger + TimeSpan.FromMilliseconds(50));
        Assert.Equal(TimeSpan.Zero, await loop.StepAsync(CancellationToken.None));
        Assert.Equal(3, loop.Projected);
        Assert.Equal(ProjectionLoop.Linger + TimeSpan.FromMilliseconds(50), loop.Lag);
        Assert.Equal(TimeSpan.Zero, loop.SinceMeasured);
    }

    [Fact]
    public async Task A_forward_wall_clock_jump_does_not_report_a_day_of_lag()
    {
        await CreateTenantsAsync(TenantA);
        var loop = new ProjectionLoop(Store, Clock);
        await AppendEventsAsync("document.read");
        await loop.StepAsync(CancellationToken.None);

        Clock.Jump(TimeSpan.FromHours(24));
        Clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.True(await loop.StepAsync(CancellationToken.None) > TimeSpan.Zero, "the entry was projected before it had lingered");
        Assert.Equal(TimeSpan.FromMilliseconds(10), loop.Lag);
    }
}
