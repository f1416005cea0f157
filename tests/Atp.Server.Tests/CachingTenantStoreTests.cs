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
/// cached key of the cell), and entries of tenants no longer in use are swept out.
/// </summary>
public sealed class CachingTenantStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-cache-").FullName;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 7, 6, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_change_to_one_key_forgets_that_key_only()
    {
        await using var store = Open();
        var cache = new CachingTenantStore(store, _clock);
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
    public async Task Entries_of_tenants_no_longer_used_are_swept_out()
    {
        await using var store = Open();
        var cache = new CachingTenantStore(store, _clock);
        for (var i = 0; i < 600; i++)
        {
            await CreateTenantAsync(store, $"old-{i}");
            Assert.NotNull(await cache.GetTenantAsync($"old-{i}", CancellationToken.None));
        }

        Assert.Equal(600, cache.CachedEntries);
        _clock.Advance(CachingTenantStore.Lifetime + TimeSpan.FromSeconds(1));
        for (var i = 0; i < 600; i++)
        {
            await CreateTenantAsync(store, $"new-{i}");
            Assert.NotNull(await cache.GetTenantAsync($"new-{i}", CancellationToken.None));
        }

        // The sweep ran once 1,024 entries had been added: the 600 expired ones are gone, the fresh ones stay.
        Assert.InRange(cache.CachedEntries, 600, 1023);
        Assert.NotNull(await cache.GetTenantAsync("old-0", CancellationToken.None));
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
