using Atp.Core.Storage;

namespace Atp.Server.Export;

/// <summary>Which signed checkpoint a complete bundle ends at.</summary>
internal static class ExportCheckpoints
{
    /// <summary>The first stored checkpoint whose size is at least <paramref name="size"/>; null when none is.</summary>
    public static Task<StoredCheckpoint?> AtOrAfterAsync(ILogStore log, string tenantId, ulong size, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(log);
        return log.GetCheckpointAtOrAfterAsync(tenantId, size, cancellationToken);
    }
}
