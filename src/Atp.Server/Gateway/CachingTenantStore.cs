using System.Collections.Concurrent;
using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Storage;
using Atp.Core.Tenants;

namespace Atp.Server.Gateway;

/// <summary>
/// Every request resolves its API key and its tenant; at thousands of requests per second those two lookups were a
/// visible share of the server's CPU. Found keys and tenants are kept for a short time. Changes made through this
/// node take effect at once (the entry is dropped); changes made by another node sharing the store within
/// <see cref="Lifetime"/>. A change to one key forgets that key only (a cell with many tenants must not lose every
/// cached key when one is first used in a new region), and expired entries are swept out as new ones arrive, so
/// tenants and keys no longer in use do not hold memory.
/// </summary>
internal sealed class CachingTenantStore(ITenantStore inner, TimeProvider clock) : ITenantStore
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);

    // Entries added between sweeps of expired entries: a sweep walks both caches, so it is paid once per this many
    // misses, never on a hit.
    private const int SweepEvery = 1024;

    private int _addedSinceSweep;

    private readonly ConcurrentDictionary<string, (ApiKey Key, DateTimeOffset Expires)> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Tenant Tenant, DateTimeOffset Expires)> _tenants = new(StringComparer.Ordinal);

    public async Task<bool> TryCreateTenantAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        _tenants.TryRemove(tenant.Id, out _);
        return await inner.TryCreateTenantAsync(tenant, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Tenant?> GetTenantAsync(string tenantId, CancellationToken cancellationToken)
    {
        if (_tenants.TryGetValue(tenantId, out var cached) && cached.Expires > clock.GetUtcNow())
        {
            return cached.Tenant;
        }

        var tenant = await inner.GetTenantAsync(tenantId, cancellationToken).ConfigureAwait(false);
        if (tenant is not null)
        {
            _tenants[tenantId] = (tenant, clock.GetUtcNow() + Lifetime);
            Added();
        }

        return tenant;
    }

    public async Task<bool> SetTenantStatusAsync(string tenantId, string status, CancellationToken cancellationToken)
    {
        var changed = await inner.SetTenantStatusAsync(tenantId, status, cancellationToken).ConfigureAwait(false);
        _tenants.TryRemove(tenantId, out _);
        return changed;
    }

    public async Task<bool> UpdateTenantSettingsAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken)
    {
        var changed = await inner.UpdateTenantSettingsAsync(tenantId, settings, cancellationToken).ConfigureAwait(false);
        _tenants.TryRemove(tenantId, out _);
        return changed;
    }

    public Task CreateApiKeyAsync(ApiKey key, CancellationToken cancellationToken) => inner.CreateApiKeyAsync(key, cancellationToken);

    public Task<ApiKey?> FindApiKeyByHashAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        FindKeyAsync("hash:" + Convert.ToHexString(keyHash), keyHash, static (store, hash, ct) => store.FindApiKeyByHashAsync(hash, ct), cancellationToken);

    public Task<ApiKey?> FindApiKeyByIdAsync(string keyId, CancellationToken cancellationToken) =>
        FindKeyAsync("id:" + keyId, keyId, static (store, id, ct) => store.FindApiKeyByIdAsync(id, ct), cancellationToken);

    private async Task<ApiKey?> FindKeyAsync<T>(string cacheKey, T lookup, Func<ITenantStore, T, CancellationToken, Task<ApiKey?>> find, CancellationToken cancellationToken)
    {
        if (_keys.TryGetValue(cacheKey, out var cached) && cached.Expires > clock.GetUtcNow())
        {
            return cached.Key;
        }

        // Only keys that exist are kept: unknown keys must not fill the cache.
        var key = await find(inner, lookup, cancellationToken).ConfigureAwait(false);
        if (key is not null)
        {
            _keys[cacheKey] = (key, clock.GetUtcNow() + Lifetime);
            Added();
        }

        return key;
    }

    public async Task<string?> SetApiKeyRegionAsync(string keyId, string region, CancellationToken cancellationToken)
    {
        var previous = await inner.SetApiKeyRegionAsync(keyId, region, cancellationToken).ConfigureAwait(false);
        ForgetKey(keyId);
        return previous;
    }

    public Task<bool> HasPlatformAdminKeyAsync(CancellationToken cancellationToken) => inner.HasPlatformAdminKeyAsync(cancellationToken);

    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenantId, CancellationToken cancellationToken) => inner.ListApiKeysAsync(tenantId, cancellationToken);

    public async Task<bool> RevokeApiKeyAsync(string? tenantId, string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken)
    {
        var revoked = await inner.RevokeApiKeyAsync(tenantId, keyId, revokedAt, cancellationToken).ConfigureAwait(false);
        ForgetKey(keyId);
        return revoked;
    }

    public async Task<bool> ReplaceSealedSigningSecretAsync(string tenantId, string keyId, byte[] current, byte[] replacement, CancellationToken cancellationToken)
    {
        var replaced = await inner.ReplaceSealedSigningSecretAsync(tenantId, keyId, current, replacement, cancellationToken).ConfigureAwait(false);

        // A cached copy of the old blob would still open while its KEK is known, but not after that KEK is retired.
        ForgetKey(keyId);
        return replaced;
    }

    public async Task<bool> ExpireApiKeyAsync(string? tenantId, string keyId, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var changed = await inner.ExpireApiKeyAsync(tenantId, keyId, expiresAt, cancellationToken).ConfigureAwait(false);
        ForgetKey(keyId);
        return changed;
    }

    public Task<IReadOnlyList<PolicyVersion>> ListPolicyVersionsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        inner.ListPolicyVersionsAsync(tenantId, limit, cancellationToken);

    // An applied version changes the tenant's settings: the cached tenant must not keep enforcing the old ones here.
    public async Task<PolicyApplyResult> ApplyPolicyVersionAsync(string tenantId, PolicyVersion version, CancellationToken cancellationToken)
    {
        var result = await inner.ApplyPolicyVersionAsync(tenantId, version, cancellationToken).ConfigureAwait(false);
        _tenants.TryRemove(tenantId, out _);
        return result;
    }

    public Task CreatePolicyProposalAsync(string tenantId, PolicyProposal proposal, CancellationToken cancellationToken) =>
        inner.CreatePolicyProposalAsync(tenantId, proposal, cancellationToken);

    public Task<PolicyProposal?> GetPolicyProposalAsync(string tenantId, string proposalId, CancellationToken cancellationToken) =>
        inner.GetPolicyProposalAsync(tenantId, proposalId, cancellationToken);

    public Task<IReadOnlyList<PolicyProposal>> ListPolicyProposalsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        inner.ListPolicyProposalsAsync(tenantId, limit, cancellationToken);

    public Task<bool> ClosePolicyProposalAsync(string tenantId, string proposalId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken) =>
        inner.ClosePolicyProposalAsync(tenantId, proposalId, state, closedBy, reason, closedAt, cancellationToken);

    /// <summary>Forgets one key under every name it is cached by (its id and its hash).</summary>
    private void ForgetKey(string keyId)
    {
        foreach (var (name, entry) in _keys)
        {
            if (string.Equals(entry.Key.Id, keyId, StringComparison.Ordinal))
            {
                _keys.TryRemove(name, out _);
            }
        }
    }

    private void Added()
    {
        if (Interlocked.Increment(ref _addedSinceSweep) < SweepEvery)
        {
            return;
        }

        Interlocked.Exchange(ref _addedSinceSweep, 0);
        var now = clock.GetUtcNow();
        foreach (var (name, entry) in _keys)
        {
            if (entry.Expires <= now)
            {
                _keys.TryRemove(new KeyValuePair<string, (ApiKey, DateTimeOffset)>(name, entry));
            }
        }

        foreach (var (id, entry) in _tenants)
        {
            if (entry.Expires <= now)
            {
                _tenants.TryRemove(new KeyValuePair<string, (Tenant, DateTimeOffset)>(id, entry));
            }
        }
    }

    /// <summary>Cached keys and tenants, for tests of the sweep.</summary>
    internal int CachedEntries => _keys.Count + _tenants.Count;
}
