using Atp.Core.Storage;

namespace Atp.Core.StoreAudit;

/// <summary>
/// One stored log row as the self-audit reads it: the leaf bytes, the leaf hash stored beside them and the Merkle
/// nodes (levels 1, 2, …, 32 bytes each) the leaf completed. The spans are valid only during the call.
/// </summary>
public delegate void StoredRowVisitor(ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash, ReadOnlySpan<byte> nodes);

/// <summary>
/// Read-only access to an engine's stored logs exactly as written — bytes, hashes, nodes, heads, checkpoints — with no
/// check of its own, so the self-audit (<c>atp verify store</c>, the server's integrity sweep) sees what is on disk.
/// Each engine has one; every read but <see cref="ListTenantsAsync"/> is scoped to one tenant.
/// </summary>
public interface ILogAuditSource : IAsyncDisposable
{
    /// <summary>Every tenant that has a log, in a stable order.</summary>
    Task<IReadOnlyList<string>> ListTenantsAsync(CancellationToken cancellationToken);

    Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>The tenant's stored checkpoints, smallest tree size first.</summary>
    Task<IReadOnlyList<StoredCheckpoint>> ListCheckpointsAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>
    /// Visits the stored rows with index in [<paramref name="fromIndex"/>, <paramref name="toIndex"/>), in index order; a
    /// missing row is simply not visited. May be called from several threads at once (for other ranges), each call
    /// visiting on its own thread.
    /// </summary>
    Task ScanAsync(string tenantId, ulong fromIndex, ulong toIndex, StoredRowVisitor visit, CancellationToken cancellationToken);
}
