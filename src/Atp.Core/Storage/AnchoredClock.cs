namespace Atp.Core.Storage;

/// <summary>
/// Two readings of "now" that a wall-clock jump during the process's life cannot push the wrong way: the wall clock,
/// and the wall clock at this object's creation advanced by the monotonic time elapsed since
/// (<see cref="TimeProvider.GetTimestamp"/>). Idempotency-Keys are stamped with the <see cref="Latest"/> of the two and
/// forgotten only when older than the retention by the <see cref="Earliest"/>, so a key is kept at least the retention
/// as this process measures elapsed time, whichever way the wall clock jumps (forward: the earliest reading ignores it;
/// backward: stamps still follow the monotonic reading). A clock already wrong when the process starts is not detected:
/// keep the clock disciplined (NTP) before starting the server.
/// </summary>
public sealed class AnchoredClock(TimeProvider clock)
{
    private readonly DateTimeOffset _anchor = clock.GetUtcNow();
    private readonly long _anchorTimestamp = clock.GetTimestamp();

    /// <summary>The earlier of the wall clock and the anchored monotonic reading.</summary>
    public DateTimeOffset Earliest()
    {
        var (wall, monotonic) = Read();
        return wall < monotonic ? wall : monotonic;
    }

    /// <summary>The later of the wall clock and the anchored monotonic reading.</summary>
    public DateTimeOffset Latest()
    {
        var (wall, monotonic) = Read();
        return wall > monotonic ? wall : monotonic;
    }

    private (DateTimeOffset Wall, DateTimeOffset Monotonic) Read() => (clock.GetUtcNow(), _anchor + clock.GetElapsedTime(_anchorTimestamp));
}
