using System.Globalization;
using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Server.Audit;

namespace Atp.Server.Integrity;

/// <summary>
/// The start-up half of rollback detection: every tenant whose stored tree is behind (or not a continuation of) the last
/// head this cell published (<see cref="PublishedHeads"/>) is quarantined like a fork — appends and checkpoints refused,
/// readiness degraded, an <c>atp.alerts.ops.v1</c> alert — unless an operator accepted the rollback with
/// <c>atp admin accept-rollback</c>; an acceptance is recorded in the platform audit log and re-bases the record on the
/// stored head. The sealer checks each head against the record again before it signs.
/// </summary>
internal sealed partial class RollbackGuard(
    ILogStore store, PublishedHeads published, LogQuarantine quarantine, PlatformAuditLog audit, ILogger<RollbackGuard> logger)
{
    public const string AcceptedAction = "log.rollback-accepted";

    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        // The platform log first: an acceptance of any tenant is recorded in it, so it must be known good (or accepted) first.
        var heads = published.List().OrderBy(h => h.TenantId == PlatformAuditLog.TenantId ? 0 : 1).ToList();
        foreach (var (tenantId, head) in heads)
        {
            var failure = await RollbackCheck.CheckAsync(store, tenantId, head, cancellationToken).ConfigureAwait(false);
            if (failure is null)
            {
                if (published.IsAccepted(tenantId))
                {
                    // Nothing was rolled back (any more): the acceptance has nothing to apply to.
                    published.Rebase(tenantId, head);
                }

                continue;
            }

            if (published.IsAccepted(tenantId) && !quarantine.Contains(PlatformAuditLog.TenantId))
            {
                await AcceptAsync(tenantId, head, failure, cancellationToken).ConfigureAwait(false);
                continue;
            }

            LogRolledBack(logger, tenantId, failure, tenantId);
            quarantine.Add(new QuarantinedLog(tenantId, TreeStateCheck.Rollback, failure));
        }
    }

    // Recorded in the platform log before the record moves, so a crash in between repeats the acceptance rather than losing it.
    private async Task AcceptAsync(string tenantId, TreeHead publishedHead, string failure, CancellationToken cancellationToken)
    {
        var stored = await store.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false) ?? new TreeHead(0, Atp.Integrity.MerkleHasher.EmptyRoot);
        await audit.RecordAsync(
            new PlatformEvent(
                PlatformEvents.AdminType, AcceptedAction, new Party("operator", "atp-admin-accept-rollback", null), tenantId, EventOutcome.Success, null,
                new Dictionary<string, string>
                {
                    ["publishedSize"] = publishedHead.Size.ToString(CultureInfo.InvariantCulture),
                    ["publishedRoot"] = publishedHead.Root.ToBase64(),
                    ["storedSize"] = stored.Size.ToString(CultureInfo.InvariantCulture),
                    ["storedRoot"] = stored.Root.ToBase64(),
                    ["detail"] = failure,
                }),
            cancellationToken).ConfigureAwait(false);

        // The platform log just grew by the record above: its head is read again so the record matches the store.
        var rebased = await store.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false) ?? stored;
        published.Rebase(tenantId, rebased);
        LogAccepted(logger, tenantId, publishedHead.Size, rebased.Size);
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "The log of tenant {TenantId} was rolled back: {Detail}. Nothing more is signed for it and appends are refused; if restoring an older backup was intended, stop the server, run `atp admin accept-rollback --data <data directory> --tenant {Tenant}` and start it again (clients holding the newer checkpoint will see the older log fail their consistency check)")]
    private static partial void LogRolledBack(ILogger logger, string tenantId, string detail, string tenant);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Accepted the rollback of tenant {TenantId}'s log from published size {PublishedSize} to stored size {StoredSize} (an operator's atp admin accept-rollback); recorded in the platform audit log")]
    private static partial void LogAccepted(ILogger logger, string tenantId, ulong publishedSize, ulong storedSize);
}
