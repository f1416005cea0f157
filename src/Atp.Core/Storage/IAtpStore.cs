using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Tenants;
using Atp.Integrity;

namespace Atp.Core.Storage;

/// <summary>Tenants and their API keys.</summary>
public interface ITenantStore
{
    /// <summary>Creates a tenant with an empty log; false when the id is taken.</summary>
    Task<bool> TryCreateTenantAsync(Tenant tenant, CancellationToken cancellationToken);

    Task<Tenant?> GetTenantAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>False when there is no such tenant.</summary>
    Task<bool> SetTenantStatusAsync(string tenantId, string status, CancellationToken cancellationToken);

    /// <summary>Replaces the tenant's settings; false when there is no such tenant.</summary>
    Task<bool> UpdateTenantSettingsAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken);

    Task CreateApiKeyAsync(ApiKey key, CancellationToken cancellationToken);

    /// <summary>A key by its public id (the keyid of a signed request).</summary>
    Task<ApiKey?> FindApiKeyByIdAsync(string keyId, CancellationToken cancellationToken);

    Task<ApiKey?> FindApiKeyByHashAsync(byte[] keyHash, CancellationToken cancellationToken);

    Task<bool> HasPlatformAdminKeyAsync(CancellationToken cancellationToken);

    /// <summary>Records the region a key was just used in; returns the region recorded before (null if none).</summary>
    Task<string?> SetApiKeyRegionAsync(string keyId, string region, CancellationToken cancellationToken);

    /// <summary>The tenant's keys (hashes included, never the keys), oldest first; a null tenant lists the platform keys.</summary>
    Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenantId, CancellationToken cancellationToken);

    /// <summary>Revokes a key of the tenant (null: a platform key); false when the tenant has no such key.</summary>
    Task<bool> RevokeApiKeyAsync(string? tenantId, string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the sealed signing secret of a tenant's key with the same secret sealed under another KEK, only if the
    /// stored blob is still <paramref name="current"/> (a compare-and-swap, so a concurrent change is never undone);
    /// false when it was not.
    /// </summary>
    Task<bool> ReplaceSealedSigningSecretAsync(string tenantId, string keyId, byte[] current, byte[] replacement, CancellationToken cancellationToken);

    /// <summary>Brings a key's expiry forward to <paramref name="expiresAt"/> (never later than it was); a null tenant names a platform key; false when there is no such key.</summary>
    Task<bool> ExpireApiKeyAsync(string? tenantId, string keyId, DateTimeOffset expiresAt, CancellationToken cancellationToken);

    /// <summary>The tenant's policy versions, newest first, at most <paramref name="limit"/>; empty before version 1 is stored.</summary>
    Task<IReadOnlyList<PolicyVersion>> ListPolicyVersionsAsync(string tenantId, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Makes <paramref name="version"/> the tenant's active policy in one transaction: stores the version (its number
    /// must be free: a compare-and-swap on the active version), marks its proposal applied (only if still pending) and
    /// writes the document's settings to the tenant. Nothing is stored unless all three happen.
    /// </summary>
    Task<PolicyApplyResult> ApplyPolicyVersionAsync(string tenantId, PolicyVersion version, CancellationToken cancellationToken);

    Task CreatePolicyProposalAsync(string tenantId, PolicyProposal proposal, CancellationToken cancellationToken);

    Task<PolicyProposal?> GetPolicyProposalAsync(string tenantId, string proposalId, CancellationToken cancellationToken);

    /// <summary>The tenant's proposals, newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<PolicyProposal>> ListPolicyProposalsAsync(string tenantId, int limit, CancellationToken cancellationToken);

    /// <summary>Closes a pending proposal as <paramref name="state"/> (rejected, expired, stale); false when it was not pending.</summary>
    Task<bool> ClosePolicyProposalAsync(string tenantId, string proposalId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken);
}

/// <summary>
/// The per-tenant append-only logs. Every method takes the tenant: no method reads across tenants.
/// </summary>
public interface ILogStore
{
    /// <summary>
    /// Appends all entries of the request or none, and returns only after the transaction is durable. Appends from
    /// concurrent callers may share one transaction (group commit); per-tenant indexes follow commit order, gap-free.
    /// </summary>
    Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken);

    Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>The tenant's committed tree size and stored leaf bytes (kept in the append's transaction); null without a log.</summary>
    Task<StorageUsage?> GetStorageUsageAsync(string tenantId, CancellationToken cancellationToken);

    Task<LogEntry?> GetEntryAsync(string tenantId, ulong index, CancellationToken cancellationToken);

    Task<LogEntry?> FindEventAsync(string tenantId, Guid eventId, CancellationToken cancellationToken);

    /// <summary>Entries from <paramref name="fromIndex"/> on, in index order.</summary>
    Task<IReadOnlyList<LogEntry>> ListEntriesAsync(string tenantId, ulong fromIndex, int limit, CancellationToken cancellationToken);

    /// <summary>The tenant's persisted Merkle nodes, for proofs.</summary>
    IMerkleNodeReader NodeReader(string tenantId);

    Task<IReadOnlyList<UnsealedLog>> ListUnsealedAsync(CancellationToken cancellationToken);

    /// <summary>Stores a checkpoint; ignored if one for the same size exists.</summary>
    Task SaveCheckpointAsync(string tenantId, ulong size, string note, DateTimeOffset createdAt, CancellationToken cancellationToken);

    Task<StoredCheckpoint?> GetLatestCheckpointAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>
    /// The tenant's stored checkpoint of the smallest size at or above <paramref name="size"/> (the exact one when it
    /// exists); null when none is that large. Export bundles end exactly at a stored checkpoint.
    /// </summary>
    Task<StoredCheckpoint?> GetCheckpointAtOrAfterAsync(string tenantId, ulong size, CancellationToken cancellationToken);

    /// <summary>
    /// Reads the tenant's committed head and, unless a checkpoint covers it, stores the note <paramref name="sign"/>
    /// makes of it; returns whether a checkpoint was stored. <paramref name="sign"/> returns null to refuse the head
    /// (it failed the fork check), and then nothing is stored. An engine shared by several nodes lets one sealer per
    /// tenant at a time do all three steps, so no node signs a head that another is already sealing.
    /// </summary>
    async Task<bool> SealAsync(string tenantId, Func<TreeHead, CancellationToken, Task<string?>> sign, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sign);
        if (await GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false) is not { } head
            || await GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false) is { } latest && latest.Size >= head.Size
            || await sign(head, cancellationToken).ConfigureAwait(false) is not { } note)
        {
            return false;
        }

        await SaveCheckpointAsync(tenantId, head.Size, note, createdAt, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// <see cref="SealAsync"/> for several tenants, with every checkpoint stored in one durable transaction: each
    /// tenant's committed head is read under the same guarantees as there, <paramref name="sign"/> is called once per
    /// tenant whose head no checkpoint covers (null skips that tenant only), and the notes of the others are committed
    /// together, so a crash leaves each tenant with its old or its new checkpoint. Returns how many were stored. The
    /// default seals one tenant at a time; the engines override it.
    /// </summary>
    async Task<int> SealManyAsync(IReadOnlyList<string> tenantIds, Func<string, TreeHead, CancellationToken, Task<string?>> sign, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenantIds);
        ArgumentNullException.ThrowIfNull(sign);
        var stored = 0;
        foreach (var tenantId in tenantIds)
        {
            if (await SealAsync(tenantId, (head, ct) => sign(tenantId, head, ct), createdAt, cancellationToken).ConfigureAwait(false))
            {
                stored++;
            }
        }

        return stored;
    }

    /// <summary>The logs this store refuses to append to because their stored tree state failed a check.</summary>
    LogQuarantine Quarantine { get; }

    /// <summary>Forgets Idempotency-Keys first used before <paramref name="before"/>.</summary>
    Task<int> PruneIdempotencyKeysAsync(DateTimeOffset before, CancellationToken cancellationToken);

    /// <summary>
    /// Every tenant's committed tree size, by tenant id: sizes only (public through checkpoints anyway), for cell-wide
    /// work such as the daily export bundles, which must find the logs that grew.
    /// </summary>
    Task<IReadOnlyList<LogSize>> ListLogSizesAsync(CancellationToken cancellationToken);
}
