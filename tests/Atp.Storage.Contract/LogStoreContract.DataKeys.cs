using System.Security.Cryptography;
using Atp.Core.Classification;
using Atp.Core.Storage;

namespace Atp.Storage.Contract;

/// <summary>
/// Wrapped data keys of classified fields (docs/classification.md): stored in the transaction of the append that
/// carries them, so no entry sealed under a key commits without it; one key per (tenant, key id), never replaced.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    private static WrappedDataKey NewDataKey(string keyId) => new(keyId, RandomNumberGenerator.GetBytes(60));

    private Task<AppendOutcome> AppendWithKeysAsync(string tenantId, IReadOnlyList<PendingEntry> entries, params WrappedDataKey[] keys) =>
        Store.AppendAsync(new AppendRequest(tenantId, entries, null) { DataKeys = keys }, CancellationToken.None);

    private Task<byte[]?> DataKeyAsync(string tenantId, string keyId) => Store.FindDataKeyAsync(tenantId, keyId, CancellationToken.None);

    [Fact]
    public async Task A_data_key_is_stored_with_the_append_that_carries_it_and_survives_a_restart()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var key = NewDataKey("subject-key-1");
        Assert.Null(await DataKeyAsync(TenantA, key.KeyId));

        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantA, NewEntries(2), key));
        await ReopenAsync();

        Assert.Equal(key.Wrapped, await DataKeyAsync(TenantA, key.KeyId));
        Assert.Null(await DataKeyAsync(TenantB, key.KeyId));
        Assert.Equal(2UL, (await HeadAsync(TenantA)).Size);
    }

    [Fact]
    public async Task A_destroyed_data_key_is_gone_with_the_commit_of_its_tombstone_and_only_then()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var erased = NewDataKey("erased-subject");
        var kept = NewDataKey("kept-subject");
        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantA, NewEntries(2), erased, kept));
        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantB, NewEntries(1), erased));

        // A tombstone whose append is refused destroys nothing.
        var id = Guid.NewGuid();
        Assert.IsType<Appended>(await AppendAsync(TenantA, [NewEntry(id)]));
        var refused = await Store.AppendAsync(new AppendRequest(TenantA, [NewEntry(), NewEntry(id)], null) { DestroyedDataKeys = [erased.KeyId] }, CancellationToken.None);
        Assert.IsType<EventIdConflict>(refused);
        Assert.Equal(erased.Wrapped, await DataKeyAsync(TenantA, erased.KeyId));

        // The tombstone commits: the key is gone, across a restart; the tenant's other key and the other tenant's key
        // under the same id stay.
        var tombstone = Assert.IsType<Appended>(await Store.AppendAsync(new AppendRequest(TenantA, [NewEntry()], null) { DestroyedDataKeys = [erased.KeyId] }, CancellationToken.None));
        Assert.False(tombstone.Replayed);
        await ReopenAsync();
        Assert.Null(await DataKeyAsync(TenantA, erased.KeyId));
        Assert.Equal(kept.Wrapped, await DataKeyAsync(TenantA, kept.KeyId));
        Assert.Equal(erased.Wrapped, await DataKeyAsync(TenantB, erased.KeyId));
        Assert.Equal(4UL, (await HeadAsync(TenantA)).Size);

        // The subject's next event gets a new key under the same id.
        var renewed = NewDataKey(erased.KeyId);
        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantA, NewEntries(1), renewed));
        Assert.Equal(renewed.Wrapped, await DataKeyAsync(TenantA, erased.KeyId));
    }

    [Fact]
    public async Task Appends_carrying_the_same_key_at_once_all_commit_and_store_it_once()
    {
        await CreateTenantsAsync(TenantA);
        var key = NewDataKey("subject-key-2");

        // Many at once, so an engine with group commit puts several in one transaction.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => AppendWithKeysAsync(TenantA, [NewEntry()], key)));

        Assert.All(outcomes, outcome => Assert.IsType<Appended>(outcome));
        Assert.Equal(40UL, (await HeadAsync(TenantA)).Size);
        Assert.Equal(key.Wrapped, await DataKeyAsync(TenantA, key.KeyId));
    }

    [Fact]
    public async Task Another_key_under_a_stored_key_id_fails_its_append_and_stores_nothing_of_it()
    {
        await CreateTenantsAsync(TenantA);
        var stored = NewDataKey("subject-key-3");
        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantA, [NewEntry()], stored));

        AppendOutcome? outcome = null;
        var error = await Record.ExceptionAsync(async () => outcome = await AppendWithKeysAsync(TenantA, NewEntries(3), NewDataKey(stored.KeyId)));

        Assert.True(error is StoreUnavailableException || (error is null && outcome is not Appended), $"a second key under one id was accepted: {error?.GetType().Name ?? outcome?.GetType().Name}");
        Assert.Equal(1UL, (await HeadAsync(TenantA)).Size);
        Assert.Equal(stored.Wrapped, await DataKeyAsync(TenantA, stored.KeyId));
        Assert.IsType<Appended>(await AppendWithKeysAsync(TenantA, [NewEntry()], stored));
    }

    [Fact]
    public async Task A_refused_append_stores_none_of_its_keys()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.NewGuid();
        var key = NewDataKey("subject-key-4");

        Assert.IsType<EventIdConflict>(await AppendWithKeysAsync(TenantA, [NewEntry(id), NewEntry(id)], key));

        Assert.Null(await DataKeyAsync(TenantA, key.KeyId));
        Assert.Equal(0UL, (await HeadAsync(TenantA)).Size);
    }
}
