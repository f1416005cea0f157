using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Atp.Core.Storage;

/// <summary>
/// The tenant logs whose stored tree state failed a check — a fork the server must never sign. Appends to a
/// quarantined log are refused and no checkpoint is signed for it; reads go on. Held in memory only, on purpose: every
/// start checks again, so a store the operator repaired serves again and one still damaged is quarantined again.
/// </summary>
public sealed class LogQuarantine
{
    private readonly ConcurrentDictionary<string, QuarantinedLog> _logs = new(StringComparer.Ordinal);

    // One item per tenant at most (a log is quarantined once per process), so unbounded stays small.
    private readonly Channel<QuarantinedLog> _raised = Channel.CreateUnbounded<QuarantinedLog>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Each log as it is quarantined, for whoever raises the alarm (the server's alert and log line).</summary>
    public ChannelReader<QuarantinedLog> Raised => _raised.Reader;

    /// <summary>Quarantines the log; false when it already was (the first mismatch found is the one kept and raised).</summary>
    public bool Add(QuarantinedLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!_logs.TryAdd(log.TenantId, log))
        {
            return false;
        }

        _raised.Writer.TryWrite(log);
        return true;
    }

    public bool Contains(string tenantId) => _logs.ContainsKey(tenantId);

    public QuarantinedLog? Find(string tenantId) => _logs.GetValueOrDefault(tenantId);

    /// <summary>Every quarantined log, by tenant id.</summary>
    public IReadOnlyList<QuarantinedLog> List() => [.. _logs.Values.OrderBy(l => l.TenantId, StringComparer.Ordinal)];

    /// <summary>The refusal an append to a quarantined log gets.</summary>
    public LogQuarantinedException Refusal(string tenantId) =>
        new(tenantId, Find(tenantId)?.Detail ?? "the log's stored tree state failed an integrity check");
}

/// <summary>
/// A quarantined log: which check failed (<see cref="TreeStateCheck"/>) and what did not match, in words an operator can
/// act on (sizes and node ids, never event contents).
/// </summary>
public sealed record QuarantinedLog(string TenantId, string Check, string Detail);

/// <summary>The checks that guard a log's tree state.</summary>
public static class TreeStateCheck
{
    /// <summary>The tree edge loaded from stored nodes (first append after start) does not add up to the stored head.</summary>
    public const string Load = "tree-load";

    /// <summary>The head about to be signed is not provably consistent with the last signed checkpoint.</summary>
    public const string Seal = "seal";

    /// <summary>The stored tree is behind (or not a continuation of) the last head this cell published: a restored older backup.</summary>
    public const string Rollback = "rollback";
}

/// <summary>The tenant's log is quarantined: nothing of the append was stored.</summary>
public sealed class LogQuarantinedException(string tenantId, string detail)
    : Exception($"The log of tenant '{tenantId}' is quarantined: {detail}. Nothing was stored.")
{
    public string TenantId { get; } = tenantId;

    public string Detail { get; } = detail;
}
