using System.Collections.Concurrent;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// The storage usage the quotas read: the tree size and the sum of the stored leaves' byte lengths, which the engine
/// keeps in the append's own transaction (so it always equals what the log holds).
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    [Fact]
    public async Task Storage_usage_of_a_new_tenant_is_zero_and_of_an_unknown_one_null()
    {
        await CreateTenantsAsync(TenantA);

        Assert.Equal(new StorageUsage(0, 0), await Store.GetStorageUsageAsync(TenantA, CancellationToken.None));
        Assert.Null(await Store.GetStorageUsageAsync("no-such-tenant", CancellationToken.None));
    }

    [Fact]
    public async Task Stored_bytes_are_the_sum_of_the_stored_leaves_after_several_batches_and_a_restart()
    {
        await CreateTenantsAsync(TenantA);
        foreach (var count in new[] { 1, 3, 7, 2, 16 })
        {
            await AppendNewAsync(TenantA, NewEntries(count));
            Assert.Equal(await SumOfStoredLeavesAsync(TenantA), await Store.GetStorageUsageAsync(TenantA, CancellationToken.None));
        }

        await ReopenAsync();

        var usage = await Store.GetStorageUsageAsync(TenantA, CancellationToken.None);
        Assert.Equal(29UL, usage!.StoredEvents);
        Assert.Equal(await SumOfStoredLeavesAsync(TenantA), usage);
    }

    [Fact]
    public async Task Refused_replayed_and_re_sent_requests_add_no_stored_bytes()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c");
        var original = TestEntries.Create("same", Clock.GetUtcNow(), id);
        await AppendNewAsync(TenantA, original);
        var claim = new IdempotencyClaim("retry-usage", Hash.Sha256("body"u8));
        Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), claim));
        var before = await Store.GetStorageUsageAsync(TenantA, CancellationToken.None);

        // A replay of the key, a re-send of the same event (stored leaf kept) and a conflicting id store nothing new.
        Assert.True(Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), claim)).Replayed);
        Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(Assert.IsType<Appended>(await AppendAsync(TenantA, [TestEntries.Create("same", Clock.GetUtcNow(), id)])).Replayed);
        Assert.IsType<EventIdConflict>(await AppendAsync(TenantA, [NewEntry(), NewEntry(id)]));

        Assert.Equal(new StorageUsage(3, before!.StoredBytes), await Store.GetStorageUsageAsync(TenantA, CancellationToken.None));
        Assert.Equal(await SumOfStoredLeavesAsync(TenantA), before);
    }

    [Fact]
    public async Task A_replay_only_request_replays_what_is_stored_and_is_refused_whole_if_any_entry_is_new()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d");
        var stored = TestEntries.Create("stored", Clock.GetUtcNow(), id);
        var storedReceipts = await AppendNewAsync(TenantA, stored);
        var claim = new IdempotencyClaim("replay-only", Hash.Sha256("body"u8));
        var keyed = NewEntries(2);
        var keyedReceipts = Assert.IsType<Appended>(await AppendAsync(TenantA, keyed, claim)).Receipts;
        var before = await Store.GetStorageUsageAsync(TenantA, CancellationToken.None);
        var refusal = new QuotaExceeded("maxStoredEvents", 3, 3, 2);

        Task<AppendOutcome> ReplayOnlyAsync(IReadOnlyList<PendingEntry> entries, IdempotencyClaim? idempotency) =>
            Store.AppendAsync(new AppendRequest(TenantA, entries, idempotency) { ReplayOnly = refusal }, CancellationToken.None);

        // What was stored comes back as a replay: by its key, and by its client-assigned id.
        var byKey = Assert.IsType<Appended>(await ReplayOnlyAsync(keyed, claim));
        Assert.True(byKey.Replayed);
        Assert.Equal(keyedReceipts, byKey.Receipts);
        var byId = Assert.IsType<Appended>(await ReplayOnlyAsync([TestEntries.Create("stored", Clock.GetUtcNow(), id)], null));
        Assert.True(byId.Replayed);
        Assert.Equal(storedReceipts, byId.Receipts);

        // Anything new is the refusal, with nothing of the request stored: new entries, a new key, a stored id with a new one.
        Assert.Equal(refusal, await ReplayOnlyAsync(NewEntries(1), null));
        Assert.Equal(refusal, await ReplayOnlyAsync(NewEntries(2), new IdempotencyClaim("fresh-key", Hash.Sha256("other"u8))));
        Assert.Equal(refusal, await ReplayOnlyAsync([TestEntries.Create("stored", Clock.GetUtcNow(), id), NewEntry(Guid.NewGuid())], null));

        Assert.Equal(before, await Store.GetStorageUsageAsync(TenantA, CancellationToken.None));
        Assert.Equal(await SumOfStoredLeavesAsync(TenantA), before);

        // The refused key was not recorded: without the quota the same request is stored, not replayed.
        Assert.False(Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), new IdempotencyClaim("fresh-key", Hash.Sha256("other"u8)))).Replayed);
    }

    [Fact]
    public async Task Concurrent_appends_to_two_tenants_keep_each_counter_equal_to_its_own_leaves()
    {
        string[] tenants = [TenantA, TenantB];
        await CreateTenantsAsync(tenants);
        var submitted = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);

        var workers = Enumerable.Range(0, 16).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            for (var i = 0; i < 25; i++)
            {
                var tenant = tenants[random.Next(tenants.Length)];
                var entries = NewEntries(random.Next(1, 6));
                Assert.IsType<Appended>(await AppendAsync(tenant, entries));
                submitted.AddOrUpdate(tenant, entries.Sum(e => (long)e.Leaf.Length), (_, sum) => sum + entries.Sum(e => (long)e.Leaf.Length));
            }
        }));
        await Task.WhenAll(workers);

        foreach (var tenant in tenants)
        {
            var usage = await Store.GetStorageUsageAsync(tenant, CancellationToken.None);
            Assert.Equal(await SumOfStoredLeavesAsync(tenant), usage);
            Assert.Equal(submitted[tenant], usage!.StoredBytes);
        }
    }

    [Fact]
    public async Task Appends_to_one_tenant_leave_another_tenants_usage_unchanged()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await AppendNewAsync(TenantB, NewEntries(2));
        var b = await Store.GetStorageUsageAsync(TenantB, CancellationToken.None);

        await AppendNewAsync(TenantA, NewEntries(5));
        await AppendNewAsync(TenantA, NewEntries(3));

        Assert.Equal(b, await Store.GetStorageUsageAsync(TenantB, CancellationToken.None));
        Assert.Equal(await SumOfStoredLeavesAsync(TenantB), b);
        Assert.Equal(await SumOfStoredLeavesAsync(TenantA), await Store.GetStorageUsageAsync(TenantA, CancellationToken.None));
    }

    // What the log holds, read back entry by entry: the figure the counter must always equal.
    private async Task<StorageUsage> SumOfStoredLeavesAsync(string tenantId)
    {
        var entries = await AllEntriesAsync(tenantId);
        return new StorageUsage((ulong)entries.Count, entries.Sum(e => (long)e.Leaf.Length));
    }
}
