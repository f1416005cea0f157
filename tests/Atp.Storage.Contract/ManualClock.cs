namespace Atp.Storage.Contract;

/// <summary>
/// A clock that moves only when told to: the one dependency tests may fake. It has two faces, as a real machine does:
/// the wall clock (<see cref="GetUtcNow"/>), which an operator or NTP can set to any time (<see cref="Jump"/>), and
/// the monotonic clock (<see cref="GetTimestamp"/>), which only ever moves forward with time (<see cref="Advance"/>).
/// </summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
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

    /// <summary>The wall clock is set (forward or back); no time passes, so the monotonic clock stays.</summary>
    public void Jump(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
