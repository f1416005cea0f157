using System.Collections.Concurrent;
using System.Globalization;
using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Atp.Server.Audit;

namespace Atp.Server.Integrity;

/// <summary>
/// The last check before leaf bytes leave the server: they must hash to the stored leaf hash (SHA-256(0x00 ‖ leaf),
/// one hash per entry served). Bytes that do not are never served: the caller answers <c>integrity-failure</c>, and the
/// mismatch goes to the log, the <c>Atp.Integrity</c> meter and, once per tenant and index for the life of the process,
/// an <c>atp.alerts.ops.v1</c> alert in the platform audit log. The integrity sweep reports through here too, so a
/// mismatch found by both is alerted once.
/// </summary>
internal sealed partial class StoredLeafCheck(PlatformAuditLog audit, IntegrityMetrics metrics, ILogger<StoredLeafCheck> logger)
{
    public const string AlertAction = "alert.integrity-failure";

    // Bounded: a store corrupted wholesale must not grow this without limit (alerts may then repeat; the log says so).
    private const int MaxRemembered = 100_000;
    private readonly ConcurrentDictionary<(string Tenant, string Kind, ulong Index), byte> _alerted = new();

    /// <summary>
    /// True when the entry's bytes hash to its stored leaf hash, or when it was purged (retention: no bytes, its leaf
    /// hash stands for it; callers that serve bytes answer 410 for it); otherwise reports it and returns false.
    /// </summary>
    public bool IsIntact(string tenantId, LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry is { PurgedBy: not null, Leaf.Length: 0 })
        {
            return true;
        }

        var computed = MerkleHasher.HashLeaf(entry.Leaf);
        if (computed == entry.LeafHash)
        {
            return true;
        }

        Report(new AuditFinding(tenantId, AuditFindingKind.Leaf, entry.Index,
            $"the leaf bytes hash to {computed.ToBase64()}, not to the stored leaf hash {entry.LeafHash.ToBase64()}"), "read");
        return false;
    }

    /// <summary>Logs, counts and (once per tenant, kind and index) alerts a mismatch found by <paramref name="source"/> (read or sweep).</summary>
    public void Report(AuditFinding finding, string source)
    {
        ArgumentNullException.ThrowIfNull(finding);
        metrics.Mismatch(source, finding.KindName);
        if (_alerted.Count >= MaxRemembered)
        {
            _alerted.Clear();
        }

        if (!_alerted.TryAdd((finding.TenantId, finding.KindName, finding.Index), 0))
        {
            return;
        }

        LogMismatch(logger, finding.TenantId, finding.KindName, finding.Index, source, finding.Detail);
        audit.Report(new PlatformEvent(
            PlatformEvents.AlertType, AlertAction, new Party("detector", "integrity-" + source, null), finding.TenantId, EventOutcome.Failure, null,
            new Dictionary<string, string>
            {
                ["kind"] = finding.KindName,
                [finding.IsEntry ? "index" : "treeSize"] = finding.Index.ToString(CultureInfo.InvariantCulture),
                ["source"] = source,
                ["detail"] = finding.Detail,
            }));
    }

    /// <summary>The problem a read path answers instead of bytes that failed the check.</summary>
    public static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult Problem(ulong index) =>
        Problems.Problem.IntegrityFailure(
            $"The stored entry {index} no longer matches its leaf hash, so it is not served. The operator has been alerted; see 'A stored leaf that no longer matches its hash' in docs/operations.md.");

    [LoggerMessage(Level = LogLevel.Critical, Message = "Integrity failure in tenant {TenantId}: {Kind} at {Index} (found by {Source}): {Detail}")]
    private static partial void LogMismatch(ILogger logger, string tenantId, string kind, ulong index, string source, string detail);
}
