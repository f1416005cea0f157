using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Benchmarks;

/// <summary>Accepts every append at once: the storage engine is not what this measures.</summary>
internal sealed class AcceptingLogStore : ILogStore
{
    private static readonly Task<AppendOutcome> Done = Task.FromResult<AppendOutcome>(new Appended([], Replayed: false));

    /// <summary>The last request accepted (a benchmark that needs the leaves the ingest path made reads them here).</summary>
    public AppendRequest? LastRequest { get; private set; }

    public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        LastRequest = request;
        return Done;
    }

    public Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<StorageUsage?> GetStorageUsageAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<LogEntry?> GetEntryAsync(string tenantId, ulong index, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<LogEntry?> FindEventAsync(string tenantId, Guid eventId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<IReadOnlyList<LogEntry>> ListEntriesAsync(string tenantId, ulong fromIndex, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

    public IMerkleNodeReader NodeReader(string tenantId) => throw new NotSupportedException();

    public Task<IReadOnlyList<UnsealedLog>> ListUnsealedAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task SaveCheckpointAsync(string tenantId, ulong size, string note, DateTimeOffset createdAt, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<StoredCheckpoint?> GetLatestCheckpointAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<StoredCheckpoint?> GetCheckpointAtOrAfterAsync(string tenantId, ulong size, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<int> PruneIdempotencyKeysAsync(DateTimeOffset before, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<IReadOnlyList<LogSize>> ListLogSizesAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

    public LogQuarantine Quarantine { get; } = new();
}
