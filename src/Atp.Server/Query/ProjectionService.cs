using System.Diagnostics.Metrics;
using Atp.Core.Query;

namespace Atp.Server.Query;

/// <summary>
/// Drains the outbox into the read models continuously (<see cref="ProjectionLoop"/>), and exports freshness: the age
/// of the oldest entry still waiting (0 when none) as the gauge <c>atp.projection.lag</c> (seconds), also used by readiness.
/// </summary>
internal sealed partial class ProjectionService : BackgroundService
{
    private readonly ProjectionLoop _loop;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProjectionService> _logger;

    public ProjectionService(IEventQueryStore store, TimeProvider clock, IMeterFactory meters, ILogger<ProjectionService> logger)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _loop = new ProjectionLoop(store, clock);
        _clock = clock;
        _logger = logger;
        meters.Create("Atp.Server").CreateObservableGauge("atp.projection.lag", () => Lag.TotalSeconds, "s", "Age of the oldest log entry not yet in the read models");
    }

    /// <summary>The last measured projection lag.</summary>
    public TimeSpan Lag => _loop.Lag;

    /// <summary>When the loop last measured the lag (readiness treats a stale measurement as a stalled projector).</summary>
    public DateTimeOffset LastMeasured => _loop.LastMeasured;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _loop.StepAsync(stoppingToken).ConfigureAwait(false);
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
