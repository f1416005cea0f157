using System.Diagnostics.Metrics;
using Atp.Core.Query;
using Microsoft.Extensions.Options;

namespace Atp.Server.Query;

/// <summary>
/// Drains the outbox into the read models continuously (<see cref="ProjectionLoop"/>), and exports freshness: the age
/// of the oldest entry still waiting (0 when none) as the gauge <c>atp.projection.lag</c> (seconds), also used by readiness.
/// With <c>Atp:Query:Projector=false</c> it only measures: other nodes of the cell project.
/// </summary>
internal sealed partial class ProjectionService : BackgroundService
{
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);
    private readonly ProjectionLoop _loop;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProjectionService> _logger;
    private readonly Atp.Core.Storage.StorageSpace _space;

    public ProjectionService(IEventQueryStore store, IOptions<AtpOptions> options, Storage.StorageEngine engine, TimeProvider clock, IMeterFactory meters, ILogger<ProjectionService> logger)
    {
        _space = engine?.Space ?? throw new ArgumentNullException(nameof(engine));
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(options);
        _loop = new ProjectionLoop(store, clock) { Projects = options.Value.Query.Projector };
        _clock = clock;
        _logger = logger;
        meters.Create("Atp.Server").CreateObservableGauge("atp.projection.lag", () => Lag.TotalSeconds, "s", "Age of the oldest log entry not yet in the read models");
    }

    /// <summary>The last measured projection lag.</summary>
    public TimeSpan Lag => _loop.Lag;

    /// <summary>When the loop last measured the lag (readiness treats a stale measurement as a stalled projector).</summary>
    public DateTimeOffset LastMeasured => _loop.LastMeasured;

    /// <summary>How long ago the loop last measured the lag (monotonic).</summary>
    public TimeSpan SinceMeasured => _loop.SinceMeasured;

    // The loop runs on its own thread with a lowered priority (ProjectorThread). The embedded engine's calls complete
    // synchronously, so its parsing and inserts run there too; PostgreSQL's continue on thread-pool threads, at normal
    // priority.
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(stoppingToken);
                stopped.TrySetResult();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                stopped.TrySetResult();
            }
            catch (Exception e)
            {
                stopped.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "atp-projector",
        };
        thread.Start();
        return stopped.Task;
    }

    private void Run(CancellationToken stoppingToken)
    {
        if (!ProjectorThread.TryLowerPriority())
        {
            LogPriorityUnchanged(_logger);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var wait = _loop.StepAsync(stoppingToken).GetAwaiter().GetResult();
                if (wait > TimeSpan.Zero)
                {
                    Task.Delay(wait, _clock, stoppingToken).GetAwaiter().GetResult();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or InvalidOperationException or IOException or System.Text.Json.JsonException or System.Data.Common.DbException)
            {
                // A full disk is logged once by the store's space state, not every second here.
                if (!_space.TryMarkFull(e, "projecting"))
                {
                    LogProjectionFailed(_logger, e);
                }

                stoppingToken.WaitHandle.WaitOne(RetryAfterFailure);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The projector runs at normal priority (lowering a thread's priority needs Linux)")]
    private static partial void LogPriorityUnchanged(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Projecting the outbox failed; retrying in 1 s")]
    private static partial void LogProjectionFailed(ILogger logger, Exception exception);
}
