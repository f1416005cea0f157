using System.Globalization;
using Atp.Core.Events;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Microsoft.Extensions.Options;

namespace Atp.Server.Retention;

/// <summary>
/// Runs a retention pass over every tenant's log each <see cref="RetentionOptions.Interval"/> (on the server's
/// clock); tenants whose policy has no retention, and read-only replicas (their source cell purges), are skipped.
/// </summary>
internal sealed partial class RetentionService(
    RetentionPass pass,
    ILogStore log,
    Core.Classification.IDataKeyStore store,
    ITenantStore tenants,
    PlatformAuditLog audit,
    IOptions<RetentionOptions> options,
    TimeProvider clock,
    ILogger<RetentionService> logger) : QuietBackgroundService
{
    /// <summary>Who the purge records of the background passes name.</summary>
    public static readonly Party Actor = new("service", "atp-retention", null);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(settings.Interval, clock, stoppingToken).ConfigureAwait(false);
            foreach (var size in await log.ListLogSizesAsync(stoppingToken).ConfigureAwait(false))
            {
                await RunTenantAsync(size.TenantId, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task RunTenantAsync(string tenantId, CancellationToken cancellationToken)
    {
        try
        {
            if (tenantId == PlatformAuditLog.TenantId
                || await tenants.GetTenantAsync(tenantId, cancellationToken).ConfigureAwait(false) is not { IsReplica: false })
            {
                return;
            }

            if (await pass.RunAsync(tenantId, Actor, null, cancellationToken).ConfigureAwait(false) is { Purged: > 0 } outcome)
            {
                LogPurged(logger, tenantId, outcome.Purged, outcome.Records.Count, outcome.RetainedByHold);
                await store.ScrubDestroyedKeysAsync(cancellationToken).ConfigureAwait(false);
                audit.Report(Purged(Actor, null, tenantId, outcome));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or StoreUnavailableException or StorageFullException or LogQuarantinedException or System.Data.Common.DbException)
        {
            // One tenant's failure (store busy, log quarantined) leaves the others' passes and the next interval.
            LogPassFailed(logger, tenantId, e);
        }
    }

    /// <summary>The platform audit record of a pass that purged something.</summary>
    public static PlatformEvent Purged(Party actor, EventContext? context, string tenantId, RetentionOutcome outcome) =>
        new(PlatformEvents.AdminType, "retention.purged", actor, tenantId, EventOutcome.Success, context, new Dictionary<string, string>
        {
            ["policyVersion"] = outcome.PolicyVersion.ToString(CultureInfo.InvariantCulture),
            ["purged"] = outcome.Purged.ToString(CultureInfo.InvariantCulture),
            ["retainedByHold"] = outcome.RetainedByHold.ToString(CultureInfo.InvariantCulture),
            ["purgeRecords"] = string.Join(",", outcome.Records.Select(r => r.Index.ToString(CultureInfo.InvariantCulture))),
        });

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention purged the content of {Purged} entries of tenant {TenantId} in {Records} purge records; {RetainedByHold} expired entries are held")]
    private static partial void LogPurged(ILogger logger, string tenantId, int purged, int records, int retainedByHold);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The retention pass of tenant {TenantId} failed; the next interval tries again")]
    private static partial void LogPassFailed(ILogger logger, string tenantId, Exception exception);
}
