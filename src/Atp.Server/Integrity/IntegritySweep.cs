using Atp.Core.StoreAudit;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>Opens the engine's read-only audit source for one sweep pass; null where the engine cannot be audited as configured.</summary>
internal sealed class AuditSourceFactory(Func<ILogAuditSource>? open, string? unavailableReason = null)
{
    public ILogAuditSource? Open() => open?.Invoke();

    public string? UnavailableReason => open is null ? unavailableReason : null;
}

/// <summary>
/// Re-verifies the stored logs in the background, slowly and forever: each pass walks every tenant's log from entry 0
/// to its head with the same checks as <c>atp verify store</c> (<see cref="TreeAudit"/>: leaf bytes against the stored
/// leaf hash, stored nodes against their children, the head's root against the tree), at most
/// <see cref="IntegritySweepOptions.EntriesPerSecond"/>. A mismatch is logged, counted and alerted
/// (<c>atp.alerts.ops.v1</c>, once per tenant and index) through <see cref="StoredLeafCheck"/>; progress is the
/// <c>Atp.Integrity</c> meter. Checkpoint signatures are left to the CLI, which an operator runs with the keys they trust.
/// </summary>
internal sealed partial class IntegritySweep(
    AuditSourceFactory sources,
    StoredLeafCheck leafCheck,
    IntegrityMetrics metrics,
    IOptions<IntegritySweepOptions> options,
    TimeProvider clock,
    ILogger<IntegritySweep> logger) : QuietBackgroundService
{
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return;
        }

        if (sources.UnavailableReason is { } reason)
        {
            LogUnavailable(logger, reason);
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var (entries, mismatches) = await PassAsync(settings, stoppingToken).ConfigureAwait(false);
                metrics.PassCompleted();
                LogPass(logger, entries, mismatches);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or System.Data.Common.DbException or IOException)
            {
                // The store is unreadable right now (locked, restarting, disk gone): the next pass tries again.
                metrics.PassFailed();
                LogPassFailed(logger, e);
            }

            await Task.Delay(settings.PauseBetweenPasses, clock, stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task<(long Entries, long Mismatches)> PassAsync(IntegritySweepOptions settings, CancellationToken cancellationToken)
    {
        // Chunks of a tenth of a second's budget, so the pace is even and a stop is honoured quickly.
        var chunk = (ulong)Math.Clamp(settings.EntriesPerSecond / 10, 1, 10_000);
        var started = clock.GetTimestamp();
        long position = 0;
        long mismatches = 0;
        metrics.SweepPosition(0);
        var source = sources.Open()!;
        await using (source.ConfigureAwait(false))
        {
            foreach (var tenant in await source.ListTenantsAsync(cancellationToken).ConfigureAwait(false))
            {
                if (await source.GetTreeHeadAsync(tenant, cancellationToken).ConfigureAwait(false) is not { } head)
                {
                    continue;
                }

                void Found(AuditFinding finding)
                {
                    mismatches++;
                    leafCheck.Report(finding, "sweep");
                }

                var audit = new TreeAudit(tenant, [head.Size], Found);
                for (ulong from = 0; from < head.Size; from += chunk)
                {
                    var to = Math.Min(head.Size, from + chunk);
                    await source.ScanAsync(tenant, from, to, audit.Check, cancellationToken).ConfigureAwait(false);
                    position += (long)(to - from);
                    metrics.Checked((long)(to - from));
                    metrics.SweepPosition(position);

                    // Pace: never ahead of EntriesPerSecond since the pass began.
                    var due = TimeSpan.FromSeconds((double)position / settings.EntriesPerSecond) - clock.GetElapsedTime(started);
                    if (due > TimeSpan.Zero)
                    {
                        await Task.Delay(due, clock, cancellationToken).ConfigureAwait(false);
                    }
                }

                if (audit.Size < head.Size)
                {
                    Found(new AuditFinding(tenant, AuditFindingKind.MissingEntry, audit.Size, $"entries from {audit.Size} to the head's size {head.Size} are not stored"));
                }
                else if (audit.TryGetRoot(head.Size, out var root) && root != head.Root)
                {
                    Found(new AuditFinding(tenant, AuditFindingKind.TreeHead, head.Size,
                        $"the stored tree head's root {head.Root.ToBase64()} is not the root of the stored tree at size {head.Size} ({root.ToBase64()})"));
                }
            }
        }

        return (position, mismatches);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The integrity sweep is not running: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Integrity sweep pass done: {Entries} entries re-verified, {Mismatches} mismatches")]
    private static partial void LogPass(ILogger logger, long entries, long mismatches);

    [LoggerMessage(Level = LogLevel.Error, Message = "An integrity sweep pass could not read the store; the next pass retries")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
