namespace Atp.Core.Erasure;

/// <summary>Where a cell keeps its tenants' erasure requests awaiting approval. Every call is scoped to one tenant.</summary>
public interface IErasureRequestStore
{
    /// <summary>
    /// Stores a new pending request unless the tenant already has <paramref name="maxPending"/> pending requests that
    /// have not expired by its creation time; false (nothing stored) then.
    /// </summary>
    Task<bool> CreateErasureRequestAsync(ErasureApprovalRequest request, int maxPending, CancellationToken cancellationToken);

    /// <summary>One request of the tenant, or null.</summary>
    Task<ErasureApprovalRequest?> GetErasureRequestAsync(string tenantId, string requestId, CancellationToken cancellationToken);

    /// <summary>The tenant's newest <paramref name="limit"/> requests, newest first; only those stored in <paramref name="state"/> when it is given.</summary>
    Task<IReadOnlyList<ErasureApprovalRequest>> ListErasureRequestsAsync(string tenantId, string? state, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Moves a pending request to <paramref name="state"/> (approved, rejected or expired) and overwrites its subject
    /// with null; false when it is not pending (so of two closings exactly one succeeds).
    /// </summary>
    Task<bool> CloseErasureRequestAsync(
        string tenantId, string requestId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken);

    /// <summary>
    /// Records what an approved request's erasure did: the tombstone's index, or (with <paramref name="tombstoneIndex"/>
    /// null) the state failed and why. False when the request is not approved or its outcome is recorded already.
    /// </summary>
    Task<bool> RecordErasureOutcomeAsync(string tenantId, string requestId, ulong? tombstoneIndex, string? failure, CancellationToken cancellationToken);
}
