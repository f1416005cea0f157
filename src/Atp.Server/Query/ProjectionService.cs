using System.Diagnostics.Metrics;
using Atp.Core.Query;

namespace Atp.Server.Query;

/// <summary>
/// Drains the outbox into the read models continuously, and measures freshness: the age of the oldest entry still
/// waiting (0 when none), exported as the gauge <c>atp.projection.lag</c> (seconds) and used by readiness.
/// </summary>
internal sealed partial class ProjectionService : BackgroundService
{
    private const int EntriesPerBatch = 2000;
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(25);
    private readonly IEventQueryStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProjectionService> _logger;
    private long _lagTicks;
    private long _lastMeasuredTicks;

    public ProjectionService(IEventQueryStore store, TimeProvider clock, IMeterFactory meters, ILogger<ProjectionService> logger)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _store = store;
        _clock = clock;
        _logger = logger;
        meters.Create("Atp.Server").CreateObservableGauge("atp.projection.lag", () => Lag.TotalSeconds, "s", "Age of the oldest log entry not yet in the read models");
    }

    /// <summary>The last measured projection lag.</summary>
    public TimeSpan Lag => TimeSpan.FromTicks(Interlocked.Read(ref _lagTicks));

    /// <summary>When the loop last measured the lag (readiness treats a stale measurement as a stalled projector).</summary>
    public DateTimeOffset LastMeasured => new(Interlocked.Read(ref _lastMeasuredTicks), TimeSpan.Zero);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var projected = await _store.ProjectPendingAsync(EntriesPerBatch, stoppingToken).ConfigureAwait(false);
                var oldest = await _store.OldestUnprojectedAsync(stoppingToken).ConfigureAwait(false);
                var now = _clock.GetUtcNow();
                Interlocked.Exchange(ref _lagTicks, oldest is { } at && now > at ? (now - at).Ticks : 0);
                Interlocked.Exchange(ref _lastMeasuredTicks, now.UtcTicks);
                if (projected == 0)
                {
                    await Task.Delay(Idle, _clock, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or InvalidOperationException or IOException or System.Text.Json.JsonException or System.Data.Common.DbException)
            {
                LogProjectionFailed(_logger, e);
                await Task.Delay(TimeSpan.FromSeconds(1), _clock, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Projecting the outbox failed; retrying in 1 s")]
    private static partial void LogProjectionFailed(ILogger logger, Exception exception);
}
