using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Server.Audit;

namespace Atp.Server.Integrity;

/// <summary>
/// Raises the alarm for each tenant log quarantined by a tree-state check: one critical log line and one
/// <c>atp.alerts.ops.v1</c> alert in the platform audit log, naming the tenant and what did not match.
/// </summary>
internal sealed partial class QuarantineAlarm(LogQuarantine quarantine, PlatformAuditLog audit, ILogger<QuarantineAlarm> logger) : QuietBackgroundService
{
    public const string Action = "alert.tree-state-mismatch";

    public static PlatformEvent Alert(QuarantinedLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        return new(
            PlatformEvents.AlertType, Action, new Party("detector", "fork-guard", null), log.TenantId, EventOutcome.Success, null,
            new Dictionary<string, string> { ["check"] = log.Check, ["detail"] = log.Detail });
    }

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        await foreach (var log in quarantine.Raised.ReadAllAsync(stoppingToken).ConfigureAwait(false))
        {
            LogQuarantined(logger, log.TenantId, log.Check, log.Detail);
            audit.Report(Alert(log));
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "The log of tenant {TenantId} is quarantined: the {Check} check found that {Detail}; appends and checkpoints for it are refused until the store is repaired and the server restarted")]
    private static partial void LogQuarantined(ILogger logger, string tenantId, string check, string detail);
}
