using System.Diagnostics.Metrics;
using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using BitFaster.Caching.Lru;

namespace Atp.Server.Gateway;

/// <summary>
/// Every request resolves its API key and its tenant; at thousands of requests per second those two lookups were a
/// visible share of the server's CPU, and with requests spread over many tenants nearly every lookup missed a
/// short-lived cache. Found keys and tenants are kept for <see cref="Lifetime"/> in two bounded LRU caches
/// (<see cref="TenantCacheOptions"/>): a miss adds one entry and, when full, evicts one, never the rest, so memory
/// stays bounded and a new tenant or key never costs the others their place. Changes made through this node take
/// effect at once (the entry is dropped, under every name it is cached by); changes made by another node sharing
/// the store within <see cref="Lifetime"/>. Expired entries are swept out on a timer, so tenants and keys that fall
/// idle stop holding memory even when no new ones arrive to push them out.
/// </summary>
internal sealed class CachingTenantStore : ITenantStore, IDisposable
{
    // A sweep walks both caches; at most every 10 s (however short the lifetime) so an idle cell costs no CPU.
    private static readonly TimeSpan MinimumSweepPeriod = TimeSpan.FromSeconds(10);

    private readonly ITenantStore inner;
    private readonly TimeProvider clock;
    private readonly ConcurrentLru<string, Cached<ApiKey>> _keys;
    private readonly ConcurrentLru<string, Cached<Tenant>> _tenants;
    private readonly ITimer _sweep;

    // Bumped by every change made through this node. A miss caches what it read only if no change happened while it
    // read: otherwise a lookup racing a revocation could put the revoked key's old row back for a whole lifetime.
    private long _changes;
    private long _hits;
    private long _misses;

    /// <summary>The meter of the gateway's own figures; labels never name a tenant or a key.</summary>
    public const string MeterName = "Atp.Gateway";

    public CachingTenantStore(ITenantStore inner, TimeProvider clock, TimeSpan lifetime, int capacity, IMeterFactory? meters = null)
    {
        this.inner = inner;
        this.clock = clock;
        Lifetime = lifetime;
        _keys = new ConcurrentLru<string, Cached<ApiKey>>(Environment.ProcessorCount, capacity, StringComparer.Ordinal);
        _tenants = new ConcurrentLru<string, Cached<Tenant>>(Environment.ProcessorCount, capacity, StringComparer.Ordinal);
        var period = lifetime > MinimumSweepPeriod ? lifetime : MinimumSweepPeriod;
        _sweep = clock.CreateTimer(_ => SweepExpired(), null, period, period);
        if (meters?.Create(MeterName) is { } meter)
        {
            meter.CreateObservableGauge("atp.gateway.tenant_cache.entries", () => CachedEntries, "{entry}", "API keys and tenants held by the gateway's cache (both names of a key count)");
            meter.CreateObservableCounter(
                "atp.gateway.tenant_cache.lookups",
                () => new[] { new Measurement<long>(Hits, new KeyValuePair<string, object?>("result", "hit")), new Measurement<long>(Misses, new KeyValuePair<string, object?>("result", "miss")) },
                "{lookup}",
                "Key and tenant lookups answered by the gateway's cache (hit) or by the store (miss)");
            meter.CreateObservableCounter("atp.gateway.tenant_cache.evictions", () => Evictions, "{entry}", "Entries pushed out because the gateway's cache was full");
        }
    }

    /// <summary>How long a found key or tenant is served without asking the store.</summary>
    public TimeSpan Lifetime { get; }

    public async Task<bool> TryCreateTenantAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var created = await inner.TryCreateTenantAsync(tenant, cancellationToken).ConfigureAwait(false);
        ForgetTenant(tenant.Id);
        return created;
    }

    public async Task<Tenant?> GetTenantAsync(string tenantId, CancellationToken cancellationToken)
    {
        if (_tenants.TryGet(tenantId, out var cached) && cached.ValueAt(clock.GetUtcNow()) is { } hit)
        {
            Interlocked.Increment(ref _hits);
            return hit;
        }

        Interlocked.Increment(ref _misses);
        var changes = Volatile.Read(ref _changes);
        var tenant = await inner.GetTenantAsync(tenantId, cancellationToken).ConfigureAwait(false);

        // Only tenants that exist are kept: probing unknown ids must not fill the cache.
        if (tenant is not null && Volatile.Read(ref _changes) == changes)
        {
            _tenants.AddOrUpdate(tenantId, new Cached<Tenant>(tenant, clock.GetUtcNow() + Lifetime));
        }

        return tenant;
    }

    public async Task<bool> SetTenantStatusAsync(string tenantId, string status, CancellationToken cancellationToken)
    {
        var changed = await inner.SetTenantStatusAsync(tenantId, status, cancellationToken).ConfigureAwait(false);
        ForgetTenant(tenantId);
        return changed;
    }

    public async Task<bool> UpdateTenantSettingsAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken)
    {
        var changed = await inner.UpdateTenantSettingsAsync(tenantId, settings, cancellationToken).ConfigureAwait(false);
        ForgetTenant(tenantId);
        return changed;
    }

    public Task CreateApiKeyAsync(ApiKey key, CancellationToken cancellationToken) => inner.CreateApiKeyAsync(key, cancellationToken);

    public Task<ApiKey?> FindApiKeyByHashAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        FindKeyAsync(HashName(keyHash), keyHash, static (store, hash, ct) => store.FindApiKeyByHashAsync(hash, ct), cancellationToken);

    public Task<ApiKey?> FindApiKeyByIdAsync(string keyId, CancellationToken cancellationToken) =>
        FindKeyAsync(IdName(keyId), keyId, static (store, id, ct) => store.FindApiKeyByIdAsync(id, ct), cancellationToken);

    private async Task<ApiKey?> FindKeyAsync<T>(string cacheKey, T lookup, Func<ITenantStore, T, CancellationToken, Task<ApiKey?>> find, CancellationToken cancellationToken)
    {
        if (_keys.TryGet(cacheKey, out var cached) && cached.ValueAt(clock.GetUtcNow()) is { } hit)
        {
            Interlocked.Increment(ref _hits);
            return hit;
        }

        Interlocked.Increment(ref _misses);
        var changes = Volatile.Read(ref _changes);
        var key = await find(inner, lookup, cancellationToken).ConfigureAwait(false);

        // Only keys that exist are kept: unknown keys must not fill the cache.
        if (key is not null && Volatile.Read(ref _changes) == changes)
        {
            _keys.AddOrUpdate(cacheKey, new Cached<ApiKey>(key, clock.GetUtcNow() + Lifetime));
        }

        return key;
    }

    public async Task<string?> SetApiKeyRegionAsync(string keyId, string region, CancellationToken cancellationToken)
    {
        var previous = await inner.SetApiKeyRegionAsync(keyId, region, cancellationToken).ConfigureAwait(false);
        await ForgetKeyAsync(keyId).ConfigureAwait(false);
        return previous;
    }

    public Task<bool> HasPlatformAdminKeyAsync(CancellationToken cancellationToken) => inner.HasPlatformAdminKeyAsync(cancellationToken);

    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenantId, CancellationToken cancellationToken) => inner.ListApiKeysAsync(tenantId, cancellationToken);

    public async Task<bool> RevokeApiKeyAsync(string? tenantId, string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken)
    {
        var revoked = await inner.RevokeApiKeyAsync(tenantId, keyId, revokedAt, cancellationToken).ConfigureAwait(false);
        await ForgetKeyAsync(keyId).ConfigureAwait(false);
        return revoked;
    }

    public async Task<bool> ReplaceSealedSigningSecretAsync(string tenantId, string keyId, byte[] current, byte[] replacement, CancellationToken cancellationToken)
    {
        var replaced = await inner.ReplaceSealedSigningSecretAsync(tenantId, keyId, current, replacement, cancellationToken).ConfigureAwait(false);

        // A cached copy of the old blob would still open while its KEK is known, but not after that KEK is retired.
        await ForgetKeyAsync(keyId).ConfigureAwait(false);
        return replaced;
    }

    public async Task<bool> ExpireApiKeyAsync(string? tenantId, string keyId, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var changed = await inner.ExpireApiKeyAsync(tenantId, keyId, expiresAt, cancellationToken).ConfigureAwait(false);
        await ForgetKeyAsync(keyId).ConfigureAwait(false);
        return changed;
    }

    public Task<IReadOnlyList<PolicyVersion>> ListPolicyVersionsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        inner.ListPolicyVersionsAsync(tenantId, limit, cancellationToken);

    // An applied version changes the tenant's settings: the cached tenant must not keep enforcing the old ones here.
    public async Task<PolicyApplyResult> ApplyPolicyVersionAsync(string tenantId, PolicyVersion version, CancellationToken cancellationToken)
    {
        var result = await inner.ApplyPolicyVersionAsync(tenantId, version, cancellationToken).ConfigureAwait(false);
        ForgetTenant(tenantId);
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

    private static string HashName(byte[] keyHash) => "hash:" + Convert.ToHexString(keyHash);

    private static string IdName(string keyId) => "id:" + keyId;

    private void ForgetTenant(string tenantId)
    {
        Interlocked.Increment(ref _changes);
        _tenants.TryRemove(tenantId);
    }

    /// <summary>
    /// Forgets one key under both names it may be cached by, its id and its hash, and nothing else. The hash comes
    /// from the store (one lookup by id, on a change, which is rare), not from the cache: the entry under the id may
    /// have been evicted while the one under the hash was not.
    /// </summary>
    private async Task ForgetKeyAsync(string keyId)
    {
        Interlocked.Increment(ref _changes);
        _keys.TryRemove(IdName(keyId));

        // Not cancellable: the change is already stored, and a caller giving up must not leave its old copy cached.
        if (await inner.FindApiKeyByIdAsync(keyId, CancellationToken.None).ConfigureAwait(false) is { } stored)
        {
            _keys.TryRemove(HashName(stored.KeyHash));
        }
    }

    /// <summary>Drops expired entries (a lookup would miss them anyway).</summary>
    internal void SweepExpired()
    {
        var now = clock.GetUtcNow();
        Sweep(_keys, now);
        Sweep(_tenants, now);
    }

    // Removing by name can race a lookup that just refreshed the entry; that costs one extra miss, never a stale answer.
    // The LRU drops a removed entry's slot only when its queues next turn over, so the entry also lets go of the key
    // or tenant it holds; and a cache left empty (a cell gone idle) is cleared, queues and all.
    private static void Sweep<T>(ConcurrentLru<string, Cached<T>> cache, DateTimeOffset now)
        where T : class
    {
        foreach (var (name, entry) in cache)
        {
            if (entry.ValueAt(now) is null)
            {
                cache.TryRemove(name);
                entry.Release();
            }
        }

        if (cache.Count == 0)
        {
            cache.Clear();
        }
    }

    public void Dispose() => _sweep.Dispose();

    /// <summary>Cached keys and tenants (at most twice the capacity).</summary>
    internal int CachedEntries => _keys.Count + _tenants.Count;

    /// <summary>Lookups answered from the cache.</summary>
    internal long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that went to the store (not cached, expired, or evicted).</summary>
    internal long Misses => Interlocked.Read(ref _misses);

    /// <summary>Entries pushed out because a cache was full.</summary>
    internal long Evictions => (_keys.Metrics.HasValue ? _keys.Metrics.Value!.Evicted : 0) + (_tenants.Metrics.HasValue ? _tenants.Metrics.Value!.Evicted : 0);

    /// <summary>A cached key or tenant until <c>expires</c>; released by the sweep so that a dropped slot holds nothing.</summary>
    private sealed class Cached<T>(T value, DateTimeOffset expires)
        where T : class
    {
        private T? _value = value;

        public T? ValueAt(DateTimeOffset now) => expires > now ? Volatile.Read(ref _value) : null;

        public void Release() => Volatile.Write(ref _value, null);
    }
}
