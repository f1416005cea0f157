using Atp.Core.Keys;
using Atp.Core.Tenants;
using Atp.Server.Gateway;
using Atp.Storage.Contract;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Server.Tests;

/// <summary>
/// The gateway's key and tenant cache over a real SQLite store: a change to one key forgets that key only (not every
/// cached key of the cell), the first use of a new key costs no other entry its place, memory stays within the
/// capacity however many tenants are touched, and a change made behind the cache's back (by another node) shows
/// within the lifetime.
/// </summary>
public sealed class CachingTenantStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-cache-").FullName;
    private static readonly TimeSpan Lifetime = TenantCacheOptions.SharedStoreLifetime;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 7, 6, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_change_to_one_key_forgets_that_key_only()
    {
        await using var store = Open();
        using var cache = new CachingTenantStore(store, _clock, Lifetime, capacity: 1000);
        var (a, aHash) = await CreateKeyAsync(store, "tenant-a");
        var (b, bHash) = await CreateKeyAsync(store, "tenant-b");
        Assert.NotNull(await cache.FindApiKeyByHashAsync(aHash, CancellationToken.None));
        Assert.NotNull(await cache.FindApiKeyByHashAsync(bHash, CancellationToken.None));

        // Behind the cache's back (as another node would), B is revoked: within the lifetime this node still serves
        // its cached copy, which shows whether the change to A below dropped B too.
        Assert.True(await store.RevokeApiKeyAsync("tenant-b", b.Id, _clock.GetUtcNow(), CancellationToken.None));
        await cache.SetApiKeyRegionAsync(a.Id, "northeu", CancellationToken.None);

        Assert.Null((await cache.FindApiKeyByHashAsync(bHash, CancellationToken.None))!.RevokedAt);
        Assert.Equal("northeu", (await cache.FindApiKeyByHashAsync(aHash, CancellationToken.None))!.LastRegion);

        // A revocation through this node takes effect at once, under both names the key is cached by.
        Assert.NotNull(await cache.FindApiKeyByIdAsync(a.Id, CancellationToken.None));
        await cache.RevokeApiKeyAsync("tenant-a", a.Id, _clock.GetUtcNow(), CancellationToken.None);
        Assert.NotNull((await cache.FindApiKeyByHashAsync(aHash, CancellationToken.None))!.RevokedAt);
        Assert.NotNull((await cache.FindApiKeyByIdAsync(a.Id, CancellationToken.None))!.RevokedAt);
    }

    [Fact]
    public async Task The_first_use_of_a_new_key_leaves_every_other_cached_key_and_tenant_in_place()
    {
        await using var store = Open();
        using var cache = new CachingTenantStore(store, _clock, Lifetime, capacity: 1000);
        var known = new List<(string Tenant, byte[] Hash)>();
        for (var i = 0; i < 200; i++)
        {
            var (key, hash) = await CreateKeyAsync(store, $"tenant-{i}");
            known.Add((key.TenantId!, hash));
            Assert.NotNull(await cache.FindApiKeyByHashAsync(hash, CancellationToken.None));
            Assert.NotNull(await cache.GetTenantAsync(key.TenantId!, CancellationToken.None));
        }

        // What the gateway does for a key it has not seen: look it up, note this cell's region on it, use its tenant.
        var (fresh, freshHash) = await CreateKeyAsync(store, "tenant-new");
        Assert.NotNull(await cache.FindApiKeyByHashAsync(freshHash, CancellationToken.None));
        await cache.SetApiKeyRegionAsync(fresh.Id, "westeu", CancellationToken.None);
        Assert.NotNull(await cache.GetTenantAsync("tenant-new", CancellationToken.None));

        var misses = cache.Misses;
        foreach (var (tenant, hash) in known)
        {
            Assert.NotNull(await cache.FindApiKeyByHashAsync(hash, CancellationToken.None));
            Assert.NotNull(await cache.GetTenantAsync(tenant, CancellationToken.None));
        }

        Assert.Equal(misses, cache.Misses);
        Assert.Equal(0, cache.Evictions);
    }

    [Fact]
    public async Task Touching_more_tenants_than_the_capacity_keeps_the_cache_at_its_capacity_evicting_one_entry_per_miss()
    {
        await using var store = Open();
        const int capacity = 128;
        using var cache = new CachingTenantStore(store, _clock, Lifetime, capacity);
        for (var i = 0; i < 3 * capacity; i++)
        {
            await CreateTenantAsync(store, $"t-{i}");
            Assert.NotNull(await cache.GetTenantAsync($"t-{i}", CancellationToken.None));
            Assert.InRange(cache.CachedEntries, 1, capacity);
        }

        // Every miss added one entry; beyond the capacity each addition pushed out exactly one other.
        Assert.True(cache.Evictions >= 2 * capacity);
        Assert.Equal(3 * capacity, cache.CachedEntries + cache.Evictions);

        // Unknown tenants are never cached, so probing ids costs no entry.
        var evictions = cache.Evictions;
        Assert.Null(await cache.GetTenantAsync("no-such-tenant", CancellationToken.None));
        Assert.Equal(evictions, cache.Evictions);

        // The most recently used tenant is still served from the cache.
        var hits = cache.Hits;
        Assert.NotNull(await cache.GetTenantAsync($"t-{(3 * capacity) - 1}", CancellationToken.None));
        Assert.Equal(hits + 1, cache.Hits);
    }

    [Fact]
    public async Task A_revocation_or_suspension_made_by_another_node_shows_within_the_lifetime()
    {
        await using var store = Open();
        using var cache = new CachingTenantStore(store, _clock, Lifetime, capacity: 1000);
        var (key, hash) = await CreateKeyAsync(store, "tenant-r");
        Assert.Null((await cache.FindApiKeyByHashAsync(hash, CancellationToken.None))!.RevokedAt);
        Assert.Equal(Tenant.Active, (await cache.GetTenantAsync("tenant-r", CancellationToken.None))!.Status);

        // Another node sharing the store revokes the key and suspends the tenant.
        Assert.True(await store.RevokeApiKeyAsync("tenant-r", key.Id, _clock.GetUtcNow(), CancellationToken.None));
        Assert.True(await store.SetTenantStatusAsync("tenant-r", Tenant.Suspended, CancellationToken.None));

        _clock.Advance(Lifetime);
        Assert.NotNull((await cache.FindApiKeyByHashAsync(hash, CancellationToken.None))!.RevokedAt);
        Assert.Equal(Tenant.Suspended, (await cache.GetTenantAsync("tenant-r", CancellationToken.None))!.Status);
    }

    [Fact]
    public async Task A_key_revoked_through_this_node_is_refused_at_once_even_when_only_its_hash_was_cached()
    {
        await using var store = Open();
        using var cache = new CachingTenantStore(store, _clock, TenantCacheOptions.EmbeddedStoreLifetime, capacity: 1000);
        var (key, hash) = await CreateKeyAsync(store, "tenant-h");
        Assert.Null((await cache.FindApiKeyByHashAsync(hash, CancellationToken.None))!.RevokedAt);

        Assert.True(await cache.RevokeApiKeyAsync("tenant-h", key.Id, _clock.GetUtcNow(), CancellationToken.None));
        Assert.NotNull((await cache.FindApiKeyByHashAsync(hash, CancellationToken.None))!.RevokedAt);
    }

    [Fact]
    public async Task Entries_of_tenants_no_longer_used_are_swept_out()
    {
        await using var store = Open();
        using var cache = new CachingTenantStore(store, _clock, Lifetime, capacity: 1000);
        for (var i = 0; i < 300; i++)
        {
            await CreateTenantAsync(store, $"old-{i}");
            Assert.NotNull(await cache.GetTenantAsync($"old-{i}", CancellationToken.None));
        }

        _clock.Advance(Lifetime);
        await CreateTenantAsync(store, "fresh");
        Assert.NotNull(await cache.GetTenantAsync("fresh", CancellationToken.None));
        Assert.Equal(301, cache.CachedEntries);

        cache.SweepExpired();
        Assert.Equal(1, cache.CachedEntries);
        Assert.Equal(0, cache.Evictions);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private SqliteStore Open() =>
        new(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), _clock, NullLogger<SqliteStore>.Instance);

    private async Task CreateTenantAsync(SqliteStore store, string id) =>
        Assert.True(await store.TryCreateTenantAsync(new Tenant(id, id, Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, _clock.GetUtcNow()), CancellationToken.None));

    private async Task<(ApiKey Key, byte[] Hash)> CreateKeyAsync(SqliteStore store, string tenantId)
    {
        await CreateTenantAsync(store, tenantId);
        var secret = ApiKeyFormat.Generate();
        var key = new ApiKey(Guid.NewGuid().ToString("n"), tenantId, "k", [Scopes.EventsWrite], ApiKeyFormat.Hash(secret), _clock.GetUtcNow());
        await store.CreateApiKeyAsync(key, CancellationToken.None);
        return (key, ApiKeyFormat.Hash(secret));
    }
}
