using Atp.Storage.Contract;

namespace Atp.Server.Tests;

/// <summary>
/// A manual clock for a server whose sealer and projector measure time on it: it moves 100 ms every 20 ms until
/// disposed, so their waits end, while a test still jumps it by days with <see cref="ManualClock.Advance"/>.
/// </summary>
internal sealed class PumpedClock : IDisposable
{
    private readonly CancellationTokenSource _stop = new();

    public PumpedClock(DateTimeOffset start)
    {
        Clock = new ManualClock(start);
        _ = PumpAsync(Clock, _stop.Token);
    }

    public ManualClock Clock { get; }

    // The pump sees the cancellation within one step and ends; nothing waits for it.
    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    private static async Task PumpAsync(ManualClock clock, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(20, CancellationToken.None);
        }
    }
}
