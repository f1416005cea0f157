namespace Atp.Server.Tests;

/// <summary>
/// A fake clock with a machine's two faces: the wall clock (<see cref="GetUtcNow"/>), which can be set to any time
/// (<see cref="Jump"/>), and the monotonic clock (<see cref="GetTimestamp"/>), which only moves with time
/// (<see cref="Advance"/>). Timers still run on real time, so the server's background loops keep turning.
/// </summary>
public sealed class JumpingClock(DateTimeOffset start) : TimeProvider
{
    private long _utcTicks = start.UtcTicks;
    private long _timestamp;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _timestamp);

    /// <summary>Time passes: both clocks move on.</summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        Interlocked.Add(ref _utcTicks, by.Ticks);
        Interlocked.Add(ref _timestamp, by.Ticks);
    }

    /// <summary>The wall clock is set (forward or back); no time passes.</summary>
    public void Jump(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
