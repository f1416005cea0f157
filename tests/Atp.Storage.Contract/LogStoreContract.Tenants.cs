using Atp.Core.Keys;
using Atp.Core.Tenants;

namespace Atp.Storage.Contract;

/// <summary>Tenants and API keys.</summary>
public abstract partial class LogStoreContract<TStore>
{
    [Fact]
    public async Task Creates_a_tenant_and_reads_back_every_field()
    {
        var tenant = new Tenant(
            "acme-eu", "Acme Europe", Tenant.EnterpriseEdition, "westeu",
            new Residency(Residency.Permitted, ["northeu", "centraleu"]), Tenant.Active,
            new DateTimeOffset(2026, 11, 3, 14, 45, 10, 250, TimeSpan.Zero));

        Assert.True(await Store.TryCreateTenantAsync(tenant, None));
        var read = await Store.GetTenantAsync("acme-eu", None);

        Assert.NotNull(read);
        Assert.Equal(tenant.Id, read.Id);
        Assert.Equal(tenant.Name, read.Name);
        Assert.Equal(tenant.Edition, read.Edition);
        Assert.Equal(tenant.HomeRegion, read.HomeRegion);
        Assert.Equal(Residency.Permitted, read.Residency.Mode);
        Assert.Equal(["northeu", "centraleu"], read.Residency.AllowedRegions);
        Assert.Equal(Tenant.Active, read.Status);
        Assert.Equal(tenant.CreatedAt, read.CreatedAt);
    }

    [Fact]
    public async Task Refuses_a_second_tenant_with_the_same_id_and_keeps_the_first()
    {
        var first = NewTenant("acme");
        Assert.True(await Store.TryCreateTenantAsync(first, None));

        var created = await Store.TryCreateTenantAsync(first with { Name = "Impostor", Status = Tenant.Suspended }, None);

        Assert.False(created);
        var read = await Store.GetTenantAsync("acme", None);
        Assert.Equal(first.Name, read!.Name);
        Assert.Equal(Tenant.Active, read.Status);
    }

    [Fact]
    public async Task Returns_null_for_an_unknown_tenant()
    {
        await CreateTenantsAsync(TenantA);

        Assert.Null(await Store.GetTenantAsync("no-such-tenant", None));
        Assert.Null(await Store.GetTenantAsync("TENANT-A", None));
    }

    [Fact]
    public async Task Changes_the_status_of_a_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);

        Assert.True(await Store.SetTenantStatusAsync(TenantA, Tenant.Suspended, None));

        var suspended = await Store.GetTenantAsync(TenantA, None);
        Assert.Equal(Tenant.Suspended, suspended!.Status);
        Assert.False(suspended.IsActive);
        Assert.Equal(Tenant.Active, (await Store.GetTenantAsync(TenantB, None))!.Status);

        Assert.True(await Store.SetTenantStatusAsync(TenantA, Tenant.Active, None));
        Assert.True((await Store.GetTenantAsync(TenantA, None))!.IsActive);
    }

    [Fact]
    public async Task Keeps_a_replica_tenant_served_and_read_only_and_accepts_its_imported_entries()
    {
        // atp import creates the tenant with the replica status, then appends and stores the source's checkpoint.
        Assert.True(await Store.TryCreateTenantAsync(NewTenant(TenantA) with { Status = Tenant.Replica }, None));
        var entries = NewEntries(3);
        await AppendNewAsync(TenantA, entries);
        await Store.SaveCheckpointAsync(TenantA, 3, "source-3", Clock.GetUtcNow(), None);

        var replica = await Store.GetTenantAsync(TenantA, None);
        Assert.Equal(Tenant.Replica, replica!.Status);
        Assert.True(replica.IsReplica);
        Assert.True(replica.IsActive);
        Assert.Equal(3UL, (await Store.GetTreeHeadAsync(TenantA, None))!.Size);
        Assert.Empty(await Store.ListUnsealedAsync(None));
    }

    [Fact]
    public async Task Setting_the_status_of_an_unknown_tenant_returns_false_and_creates_nothing()
    {
        Assert.False(await Store.SetTenantStatusAsync("no-such-tenant", Tenant.Suspended, None));

        Assert.Null(await Store.GetTenantAsync("no-such-tenant", None));
    }

    [Fact]
    public async Task Finds_an_api_key_by_the_hash_of_the_key()
    {
        await CreateTenantsAsync(TenantA);
        var tenantKey = NewApiKey("key-1", TenantA, Scopes.EventsWrite, Scopes.EventsRead);
        var platformKey = NewApiKey("key-2", null, Scopes.PlatformAdmin);
        await Store.CreateApiKeyAsync(tenantKey, None);
        await Store.CreateApiKeyAsync(platformKey, None);

        var found = await Store.FindApiKeyByHashAsync(tenantKey.KeyHash, None);
        var foundPlatform = await Store.FindApiKeyByHashAsync(platformKey.KeyHash, None);

        Assert.NotNull(found);
        Assert.Equal("key-1", found.Id);
        Assert.Equal(TenantA, found.TenantId);
        Assert.Equal(tenantKey.Name, found.Name);
        Assert.Equal([Scopes.EventsWrite, Scopes.EventsRead], found.Scopes);
        Assert.Equal(tenantKey.KeyHash, found.KeyHash);
        Assert.Equal(tenantKey.CreatedAt, found.CreatedAt);
        Assert.NotNull(foundPlatform);
        Assert.Equal("key-2", foundPlatform.Id);
        Assert.Null(foundPlatform.TenantId);
        Assert.Equal([Scopes.PlatformAdmin], foundPlatform.Scopes);
    }

    [Fact]
    public async Task Returns_null_for_a_key_hash_that_was_never_stored()
    {
        await CreateTenantsAsync(TenantA);
        var key = NewApiKey("key-1", TenantA, Scopes.EventsRead);
        await Store.CreateApiKeyAsync(key, None);
        var almost = (byte[])key.KeyHash.Clone();
        almost[^1] ^= 1;

        Assert.Null(await Store.FindApiKeyByHashAsync(almost, None));
        Assert.Null(await Store.FindApiKeyByHashAsync(ApiKeyFormat.Hash(ApiKeyFormat.Generate()), None));
    }

    [Fact]
    public async Task Reports_a_platform_admin_key_only_once_a_tenantless_key_has_that_scope()
    {
        await CreateTenantsAsync(TenantA);
        Assert.False(await Store.HasPlatformAdminKeyAsync(None));

        // Neither a tenant key (whatever its scopes) nor a platform key without the scope counts.
        await Store.CreateApiKeyAsync(NewApiKey("tenant-admin", TenantA, Scopes.TenantAdmin, Scopes.EventsWrite), None);
        await Store.CreateApiKeyAsync(NewApiKey("tenant-claims-platform", TenantA, Scopes.PlatformAdmin), None);
        await Store.CreateApiKeyAsync(NewApiKey("platform-reader", null, Scopes.EventsRead), None);
        Assert.False(await Store.HasPlatformAdminKeyAsync(None));

        await Store.CreateApiKeyAsync(NewApiKey("platform-admin", null, Scopes.EventsRead, Scopes.PlatformAdmin), None);
        Assert.True(await Store.HasPlatformAdminKeyAsync(None));
    }

    [Fact]
    public async Task Lists_a_tenants_keys_with_expiry_and_revocation_and_no_other_tenants_keys()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var expiring = NewApiKey("key-1", TenantA, Scopes.EventsRead) with { ExpiresAt = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero) };
        await Store.CreateApiKeyAsync(expiring, None);
        await Store.CreateApiKeyAsync(NewApiKey("key-2", TenantA, Scopes.EventsWrite), None);
        await Store.CreateApiKeyAsync(NewApiKey("key-3", TenantB, Scopes.EventsWrite), None);

        var keys = await Store.ListApiKeysAsync(TenantA, None);

        Assert.Equal(["key-1", "key-2"], keys.Select(k => k.Id).Order());
        Assert.Equal(expiring.ExpiresAt, keys.Single(k => k.Id == "key-1").ExpiresAt);
        Assert.All(keys, k => Assert.Null(k.RevokedAt));
    }

    [Fact]
    public async Task Revokes_only_a_key_of_the_given_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var key = NewApiKey("key-1", TenantA, Scopes.EventsRead);
        await Store.CreateApiKeyAsync(key, None);
        var at = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

        Assert.False(await Store.RevokeApiKeyAsync(TenantB, "key-1", at, None));
        Assert.Null((await Store.FindApiKeyByHashAsync(key.KeyHash, None))!.RevokedAt);
        Assert.True(await Store.RevokeApiKeyAsync(TenantA, "key-1", at, None));
        Assert.False(await Store.RevokeApiKeyAsync(TenantA, "no-such-key", at, None));

        var revoked = await Store.FindApiKeyByHashAsync(key.KeyHash, None);
        Assert.Equal(at, revoked!.RevokedAt);
        Assert.Equal(ApiKey.Revoked, revoked.StatusAt(at));
    }

    [Fact]
    public async Task A_sealed_secret_is_replaced_only_when_it_is_still_the_one_read_and_only_in_its_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        byte[] first = [1, 1, 1], second = [2, 2, 2], third = [3, 3, 3];
        var key = NewApiKey("key-1", TenantA, Scopes.EventsWrite) with { SealedSigningSecret = first };
        await Store.CreateApiKeyAsync(key, None);

        Assert.False(await Store.ReplaceSealedSigningSecretAsync(TenantB, "key-1", first, second, None));
        Assert.False(await Store.ReplaceSealedSigningSecretAsync(TenantA, "key-1", third, second, None));
        Assert.Equal(first, (await Store.FindApiKeyByIdAsync("key-1", None))!.SealedSigningSecret);

        Assert.True(await Store.ReplaceSealedSigningSecretAsync(TenantA, "key-1", first, second, None));
        Assert.Equal(second, (await Store.FindApiKeyByIdAsync("key-1", None))!.SealedSigningSecret);

        // A second writer that read the first blob does not undo the change.
        Assert.False(await Store.ReplaceSealedSigningSecretAsync(TenantA, "key-1", first, third, None));
        Assert.Equal(second, (await Store.FindApiKeyByIdAsync("key-1", None))!.SealedSigningSecret);
    }

    [Fact]
    public async Task Bringing_expiry_forward_never_extends_a_key()
    {
        await CreateTenantsAsync(TenantA);
        var early = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var late = early.AddDays(30);
        await Store.CreateApiKeyAsync(NewApiKey("key-1", TenantA, Scopes.EventsRead) with { ExpiresAt = early }, None);
        await Store.CreateApiKeyAsync(NewApiKey("key-2", TenantA, Scopes.EventsRead), None);

        Assert.True(await Store.ExpireApiKeyAsync(TenantA, "key-1", late, None));
        Assert.True(await Store.ExpireApiKeyAsync(TenantA, "key-2", late, None));
        Assert.False(await Store.ExpireApiKeyAsync(TenantA, "key-3", late, None));

        var keys = (await Store.ListApiKeysAsync(TenantA, None)).ToDictionary(k => k.Id);
        Assert.Equal(early, keys["key-1"].ExpiresAt);
        Assert.Equal(late, keys["key-2"].ExpiresAt);
        Assert.Equal(ApiKey.Expired, keys["key-1"].StatusAt(early));
        Assert.Equal(ApiKey.Active, keys["key-2"].StatusAt(early));
    }

    [Fact]
    public async Task A_new_tenant_has_no_settings_and_settings_round_trip_per_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        Assert.Equal(TenantSettings.None, (await Store.GetTenantAsync(TenantA, None))!.Settings);

        Assert.True(await Store.UpdateTenantSettingsAsync(TenantA, new TenantSettings(true, 500, 40), None));
        Assert.Equal(new TenantSettings(true, 500, 40), (await Store.GetTenantAsync(TenantA, None))!.Settings);
        Assert.Equal(TenantSettings.None, (await Store.GetTenantAsync(TenantB, None))!.Settings);

        Assert.True(await Store.UpdateTenantSettingsAsync(TenantA, new TenantSettings(false, null, 7), None));
        Assert.Equal(new TenantSettings(false, null, 7), (await Store.GetTenantAsync(TenantA, None))!.Settings);

        var work = new TenantSettings(null, null, null) { IngestEventsPerSecond = 2000, IngestBytesPerSecond = 1_048_576, ReadCostPerSecond = 90 };
        Assert.True(await Store.UpdateTenantSettingsAsync(TenantB, work, None));
        Assert.Equal(work, (await Store.GetTenantAsync(TenantB, None))!.Settings);
        Assert.Equal(new TenantSettings(false, null, 7), (await Store.GetTenantAsync(TenantA, None))!.Settings);

        // Export quotas: byte quotas beyond 32 bits round-trip on both engines.
        var exports = work with { MaxConcurrentExports = 3, MaxDailyExportBytes = 64L * 1024 * 1024 * 1024, ExportJobMaxBytes = 5_000_000_000 };
        Assert.True(await Store.UpdateTenantSettingsAsync(TenantB, exports, None));
        Assert.Equal(exports, (await Store.GetTenantAsync(TenantB, None))!.Settings);

        Assert.False(await Store.UpdateTenantSettingsAsync("no-such-tenant", new TenantSettings(true, 1, 1), None));
        Assert.Null(await Store.GetTenantAsync("no-such-tenant", None));
    }

    [Fact]
    public async Task Finds_a_key_by_id_with_its_sealed_signing_secret()
    {
        await CreateTenantsAsync(TenantA);
        byte[] sealedSecret = [1, 2, 3, 250, 0, 7];
        await Store.CreateApiKeyAsync(NewApiKey("key-signing", TenantA, Scopes.EventsWrite) with { SealedSigningSecret = sealedSecret }, None);
        await Store.CreateApiKeyAsync(NewApiKey("key-plain", TenantA, Scopes.EventsWrite), None);

        var signing = await Store.FindApiKeyByIdAsync("key-signing", None);
        var plain = await Store.FindApiKeyByIdAsync("key-plain", None);

        Assert.Equal(sealedSecret, signing!.SealedSigningSecret);
        Assert.Equal(TenantA, signing.TenantId);
        Assert.Null(plain!.SealedSigningSecret);
        Assert.Null(await Store.FindApiKeyByIdAsync("key-missing", None));
        Assert.Equal(sealedSecret, (await Store.ListApiKeysAsync(TenantA, None)).Single(k => k.Id == "key-signing").SealedSigningSecret);
    }

    [Fact]
    public async Task Remembers_the_region_a_key_was_last_used_in()
    {
        await CreateTenantsAsync(TenantA);
        await Store.CreateApiKeyAsync(NewApiKey("key-1", TenantA, Scopes.EventsWrite), None);
        await Store.CreateApiKeyAsync(NewApiKey("key-2", TenantA, Scopes.EventsWrite), None);

        Assert.Null(await Store.SetApiKeyRegionAsync("key-1", "westeu", None));
        Assert.Equal("westeu", await Store.SetApiKeyRegionAsync("key-1", "northeu", None));

        Assert.Equal("northeu", (await Store.FindApiKeyByIdAsync("key-1", None))!.LastRegion);
        Assert.Null((await Store.FindApiKeyByIdAsync("key-2", None))!.LastRegion);
    }
}
