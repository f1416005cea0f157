using System.Diagnostics.Metrics;
using Atp.Core.Query;
using Microsoft.Extensions.Options;

namespace Atp.Server.Query;

/// <summary>
/// Re-verifies the read models in the background, slowly and forever: each pass walks every tenant's projected entries
/// in index order and compares each stored searchable value and index entry with the log
/// (<see cref="IEventQueryStore.VerifyProjectedRowsAsync"/>), at most <see cref="ReadModelSweepOptions.RowsPerSecond"/>.
/// A search checks only the rows it serves; a damaged value that makes it miss a row shows only here. A mismatch is
/// damage like any other: the store moves the file aside and rebuilds it (searches answer 503 projection-rebuilding
/// meanwhile); the sweep logs it and counts it in <c>atp.projection.sweep.mismatches</c> (meter <c>Atp.Projection</c>).
/// On PostgreSQL the store has nothing to check and a pass ends at once.
/// </summary>
internal sealed partial class ReadModelSweep : QuietBackgroundService
{
    private readonly IEventQueryStore _store;
    private readonly IOptions<ReadModelSweepOptions> _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<ReadModelSweep> _logger;
    private readonly Counter<long> _rows;
    private readonly Counter<long> _mismatches;
    private readonly Counter<long> _passes;

    public ReadModelSweep(IEventQueryStore store, IOptions<ReadModelSweepOptions> options, TimeProvider clock, IMeterFactory meters, ILogger<ReadModelSweep> logger)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _store = store;
        _options = options;
        _clock = clock;
        _logger = logger;
        var meter = meters.Create(ProjectionService.MeterName);
        _rows = meter.CreateCounter<long>("atp.projection.sweep.rows", "{entry}", "Projected entries the read-model sweep compared with the log");
        _mismatches = meter.CreateCounter<long>("atp.projection.sweep.mismatches", "{mismatch}", "Read-model rows or index entries the sweep found disagreeing with the log (each starts a rebuild)");
        _passes = meter.CreateCounter<long>("atp.projection.sweep.passes", "{pass}", "Read-model sweep passes completed over every tenant");
    }

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var settings = _options.Value;
        if (!settings.Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var (rows, damaged) = await PassAsync(settings, stoppingToken).ConfigureAwait(false);
                if (!damaged)
                {
                    _passes.Add(1);
                    LogPass(_logger, rows);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or System.Data.Common.DbException or IOException)
            {
                // The read models are unreadable right now (locked, being replaced): the next pass tries again.
                LogPassFailed(_logger, e);
            }

            await Task.Delay(settings.PauseBetweenPasses, _clock, stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task<(long Rows, bool Damaged)> PassAsync(ReadModelSweepOptions settings, CancellationToken cancellationToken)
    {
        // Steps of a tenth of a second's budget, so the pace is even and a stop is honoured quickly.
        var step = Math.Clamp(settings.RowsPerSecond / 10, 1, 10_000);
        var started = _clock.GetTimestamp();
        long rows = 0;
        foreach (var tenant in await _store.ListProjectedTenantsAsync(cancellationToken).ConfigureAwait(false))
        {
            ulong position = 0;
            while (true)
            {
                var result = await _store.VerifyProjectedRowsAsync(tenant, position, step, cancellationToken).ConfigureAwait(false);
                rows += result.Checked;
                _rows.Add(result.Checked);
                if (result.Damaged)
                {
                    // The store already moved to rebuilding; a new pass starts over the rebuilt file.
                    _mismatches.Add(1);
                    LogMismatch(_logger, tenant, result.NextIndex);
                    return (rows, true);
                }

                if (result.Done)
                {
                    break;
                }

                position = result.NextIndex;

                // Pace: never ahead of RowsPerSecond since the pass began.
                var due = TimeSpan.FromSeconds((double)rows / settings.RowsPerSecond) - _clock.GetElapsedTime(started);
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, _clock, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return (rows, false);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The read-model sweep found the read models of tenant {TenantId} disagreeing with the log at or after entry {Index}; they are being rebuilt from the log")]
    private static partial void LogMismatch(ILogger logger, string tenantId, ulong index);

    [LoggerMessage(Level = LogLevel.Information, Message = "Read-model sweep pass done: {Rows} projected entries compared with the log")]
    private static partial void LogPass(ILogger logger, long rows);

    [LoggerMessage(Level = LogLevel.Error, Message = "A read-model sweep pass could not read the read models; the next pass retries")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
