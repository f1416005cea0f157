using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Benchmarks;

/// <summary>
/// Accepts every append at once: the storage engine is not what this measures. It keeps the data keys appends carry,
/// so a key ring re-checking its cached keys finds them stored.
/// </summary>
internal sealed class AcceptingLogStore : ILogStore, Atp.Core.Classification.IDataKeyStore
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), byte[]> _dataKeys = new();

    private static readonly Task<AppendOutcome> Done = Task.FromResult<AppendOutcome>(new Appended([], Replayed: false));

    /// <summary>The last request accepted (a benchmark that needs the leaves the ingest path made reads them here).</summary>
    public AppendRequest? LastRequest { get; private set; }

    public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        LastRequest = request;
        foreach (var key in request.DataKeys)
        {
            _dataKeys.TryAdd((request.TenantId, key.KeyId), key.Wrapped);
        }

        return Done;
    }

    public Task<byte[]?> FindDataKeyAsync(string tenantId, string keyId, CancellationToken cancellationToken) =>
        Task.FromResult(_dataKeys.TryGetValue((tenantId, keyId), out var wrapped) ? wrapped : null);

    public Task<bool> ScrubDestroyedKeysAsync(CancellationToken cancellationToken) => Task.FromResult(true);

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
