using System.Diagnostics.Metrics;
using Atp.Core.Query;
using Microsoft.Extensions.Options;

namespace Atp.Server.Query;

/// <summary>
/// Drains the outbox into the read models continuously (<see cref="ProjectionLoop"/>), and exports freshness: the age
/// of the oldest entry still waiting (0 when none) as the gauge <c>atp.projection.lag</c> (seconds), also used by readiness.
/// With <c>Atp:Query:Projector=false</c> it only measures: other nodes of the cell project.
/// Entries that cannot be projected are dead letters (the store sets them aside); their number in the cell is the gauge
/// <c>atp.projection.dead_letters</c> of the meter <c>Atp.Projection</c>, refreshed every few seconds, as is the outbox
/// backlog <c>atp.outbox.backlog</c> (entries waiting to be projected in the cell, counted over a bounded number of
/// outbox rows: see <see cref="IEventQueryStore.CountOutboxBacklogAsync"/>).
/// </summary>
internal sealed partial class ProjectionService : BackgroundService
{
    /// <summary>The meter of the projector's own instruments.</summary>
    public const string MeterName = "Atp.Projection";

    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CountDeadLettersEvery = TimeSpan.FromSeconds(5);

    // At most this many outbox rows are read per backlog count (each row names up to one append request's entries).
    private const int BacklogRowsCounted = 100_000;
    private readonly ProjectionLoop _loop;
    private readonly IEventQueryStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProjectionService> _logger;
    private readonly Atp.Core.Storage.StorageSpace _space;
    private long _deadLetters;
    private long _outboxBacklog;
    private long _deadLettersCountedAt;

    public ProjectionService(IEventQueryStore store, IOptions<AtpOptions> options, Storage.StorageEngine engine, TimeProvider clock, IMeterFactory meters, ILogger<ProjectionService> logger)
    {
        _space = engine?.Space ?? throw new ArgumentNullException(nameof(engine));
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(options);
        _loop = new ProjectionLoop(store, clock) { Projects = options.Value.Query.Projector };
        _store = store;
        _clock = clock;
        _logger = logger;
        meters.Create("Atp.Server").CreateObservableGauge("atp.projection.lag", () => Lag.TotalSeconds, "s", "Age of the oldest log entry not yet in the read models");
        var projection = meters.Create(MeterName);
        projection.CreateObservableGauge("atp.projection.dead_letters", () => DeadLetters, "{entry}", "Log entries the projector set aside because it could not project them");
        projection.CreateObservableGauge("atp.projection.rebuilding", () => Rebuilding ? 1 : 0, "{state}", "1 while the read models are rebuilt after damage to them");
        projection.CreateObservableGauge(
            "atp.outbox.backlog",
            () => OutboxBacklog,
            "{entry}",
            "Log entries in the cell waiting in the outbox to be projected (counted over at most the 100,000 oldest outbox rows)");
    }

    /// <summary>Dead letters in the cell at the last count.</summary>
    public long DeadLetters => Interlocked.Read(ref _deadLetters);

    /// <summary>Entries waiting in the outbox at the last count (every few seconds, not per scrape).</summary>
    public long OutboxBacklog => Interlocked.Read(ref _outboxBacklog);

    /// <summary>True while the read models are rebuilt after damage (searches answer 503 projection-rebuilding).</summary>
    public bool Rebuilding => _store.IsRebuilding;

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
                CountDeadLetters(stoppingToken);
                if (wait > TimeSpan.Zero)
                {
                    Task.Delay(wait, _clock, stoppingToken).GetAwaiter().GetResult();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or InvalidOperationException or IOException or System.Text.Json.JsonException or System.Data.Common.DbException or ProjectionRebuildingException)
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

    private void CountDeadLetters(CancellationToken stoppingToken)
    {
        var now = _clock.GetTimestamp();
        if (Interlocked.Read(ref _deadLettersCountedAt) != 0 && _clock.GetElapsedTime(Interlocked.Read(ref _deadLettersCountedAt), now) < CountDeadLettersEvery)
        {
            return;
        }

        Interlocked.Exchange(ref _deadLettersCountedAt, now);
        var counted = _store.CountDeadLettersAsync(stoppingToken).GetAwaiter().GetResult();
        var before = Interlocked.Exchange(ref _deadLetters, counted);
        if (counted > before)
        {
            LogDeadLetters(_logger, counted);
        }

        Interlocked.Exchange(ref _outboxBacklog, _store.CountOutboxBacklogAsync(BacklogRowsCounted, stoppingToken).GetAwaiter().GetResult());
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} log entries could not be projected and are set aside as dead letters (see GET …/projection/dead-letters)")]
    private static partial void LogDeadLetters(ILogger logger, long count);

    [LoggerMessage(Level = LogLevel.Information, Message = "The projector runs at normal priority (lowering a thread's priority needs Linux)")]
    private static partial void LogPriorityUnchanged(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Projecting the outbox failed; retrying in 1 s")]
    private static partial void LogProjectionFailed(ILogger logger, Exception exception);
}
