using System.Collections.Concurrent;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>Appending, reading back, tenant isolation and group commit under concurrency.</summary>
public abstract partial class LogStoreContract<TStore>
{
    [Fact]
    public async Task A_new_tenant_has_an_empty_tree_head()
    {
        await CreateTenantsAsync(TenantA);

        var head = await Store.GetTreeHeadAsync(TenantA, None);

        Assert.Equal(new TreeHead(0, MerkleHasher.EmptyRoot), head);
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", head!.Root.ToHex());
        Assert.Empty(await AllEntriesAsync(TenantA));
        Assert.Null(await Store.GetEntryAsync(TenantA, 0, None));
    }

    [Fact]
    public async Task An_unknown_tenant_has_no_tree_head_and_no_entries()
    {
        await CreateTenantsAsync(TenantA);
        await AppendNewAsync(TenantA, NewEntries(2));

        Assert.Null(await Store.GetTreeHeadAsync("no-such-tenant", None));
        Assert.Null(await Store.GetEntryAsync("no-such-tenant", 0, None));
        Assert.Empty(await Store.ListEntriesAsync("no-such-tenant", 0, 100, None));
    }

    [Fact]
    public async Task Appends_get_consecutive_indexes_in_request_order()
    {
        await CreateTenantsAsync(TenantA);
        var first = NewEntries(3);
        var second = NewEntries(2);
        var third = NewEntries(1);

        var r1 = await AppendNewAsync(TenantA, first);
        var r2 = await AppendNewAsync(TenantA, second);
        var r3 = await AppendNewAsync(TenantA, third);

        Assert.Equal(first.Select((e, i) => new Receipt(e.EventId, (ulong)i, e.LeafHash)), r1);
        Assert.Equal(second.Select((e, i) => new Receipt(e.EventId, 3 + (ulong)i, e.LeafHash)), r2);
        Assert.Equal([new Receipt(third[0].EventId, 5, third[0].LeafHash)], r3);
        Assert.Equal(6UL, (await HeadAsync(TenantA)).Size);
    }

    [Fact]
    public async Task Tree_head_root_equals_an_independently_computed_root_after_every_append()
    {
        await CreateTenantsAsync(TenantA);
        var appended = new List<PendingEntry>();
        var compact = new CompactRange();

        foreach (var count in new[] { 1, 1, 2, 3, 1, 8, 5, 11 })
        {
            var entries = NewEntries(count);
            await AppendNewAsync(TenantA, entries);
            appended.AddRange(entries);
            foreach (var entry in entries)
            {
                compact.Append(MerkleHasher.HashLeaf(entry.Leaf));
            }

            var head = await HeadAsync(TenantA);
            Assert.Equal((ulong)appended.Count, head.Size);
            Assert.Equal(RootOf(appended), head.Root);
            Assert.Equal(compact.Root(), head.Root);
        }
    }

    [Fact]
    public async Task Stored_entries_hold_the_exact_appended_bytes()
    {
        await CreateTenantsAsync(TenantA);
        var entries = NewEntries(4);
        Clock.Advance(TimeSpan.FromSeconds(2));
        var clientEvent = NewEntry(Guid.Parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
        var all = entries.Append(clientEvent).ToArray();

        await AppendNewAsync(TenantA, entries);
        await AppendNewAsync(TenantA, clientEvent);

        for (var i = 0; i < all.Length; i++)
        {
            AssertStored(all[i], (ulong)i, await Store.GetEntryAsync(TenantA, (ulong)i, None));
            AssertStored(all[i], (ulong)i, await Store.FindEventAsync(TenantA, all[i].EventId, None));
        }

        var listed = await AllEntriesAsync(TenantA);
        Assert.Equal(all.Length, listed.Count);
        for (var i = 0; i < all.Length; i++)
        {
            AssertStored(all[i], (ulong)i, listed[i]);
        }
    }

    [Fact]
    public async Task Lists_entries_in_index_order_from_an_index_up_to_a_limit()
    {
        await CreateTenantsAsync(TenantA);
        var entries = NewEntries(7);
        await AppendNewAsync(TenantA, entries[..3]);
        await AppendNewAsync(TenantA, entries[3..]);

        var page = await Store.ListEntriesAsync(TenantA, 2, 3, None);
        var tail = await Store.ListEntriesAsync(TenantA, 5, 100, None);
        var beyond = await Store.ListEntriesAsync(TenantA, 7, 100, None);

        Assert.Equal([2UL, 3UL, 4UL], page.Select(e => e.Index));
        Assert.Equal(entries[2..5].Select(e => e.EventId), page.Select(e => e.EventId));
        Assert.Equal([5UL, 6UL], tail.Select(e => e.Index));
        Assert.Empty(beyond);
        Assert.Null(await Store.GetEntryAsync(TenantA, 7, None));
        Assert.Null(await Store.FindEventAsync(TenantA, Guid.CreateVersion7(), None));
    }

    [Fact]
    public async Task Entries_of_one_tenant_are_never_visible_through_another_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var a = NewEntries(5);
        var b = NewEntries(2);
        var shared = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var aClient = NewEntry(shared);
        await AppendNewAsync(TenantA, a);
        await AppendNewAsync(TenantA, aClient);
        await AppendNewAsync(TenantB, b);

        foreach (var entry in a.Append(aClient))
        {
            Assert.Null(await Store.FindEventAsync(TenantB, entry.EventId, None));
        }

        foreach (var entry in b)
        {
            Assert.Null(await Store.FindEventAsync(TenantA, entry.EventId, None));
        }

        Assert.Null(await Store.GetEntryAsync(TenantB, 2, None));
        AssertStored(b[0], 0, await Store.GetEntryAsync(TenantB, 0, None));
        AssertStored(a[0], 0, await Store.GetEntryAsync(TenantA, 0, None));
        Assert.Equal(b.Select(e => e.EventId), (await AllEntriesAsync(TenantB)).Select(e => e.EventId));
        Assert.Equal(new TreeHead(2, RootOf(b)), await HeadAsync(TenantB));
        Assert.Equal(new TreeHead(6, RootOf(a.Append(aClient))), await HeadAsync(TenantA));
        Assert.Equal(RootOf(b), await new ProofBuilder(Store.NodeReader(TenantB)).RootAsync(2, None));
    }

    [Fact]
    public async Task Group_commit_under_concurrency_keeps_every_tenant_log_gap_free_and_consistent()
    {
        string[] tenants = [TenantA, TenantB, TenantC];
        await CreateTenantsAsync(tenants);
        var results = new ConcurrentBag<(string Tenant, PendingEntry[] Entries, IReadOnlyList<Receipt> Receipts)>();

        var workers = Enumerable.Range(0, 32).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            for (var i = 0; i < 50; i++)
            {
                var tenant = tenants[random.Next(tenants.Length)];
                var entries = NewEntries(random.Next(1, 6));
                var outcome = await AppendAsync(tenant, entries);
                var appended = Assert.IsType<Appended>(outcome);
                results.Add((tenant, entries, appended.Receipts));
            }
        }));
        await Task.WhenAll(workers);

        Assert.Equal(32 * 50, results.Count);
        foreach (var tenant in tenants)
        {
            var mine = results.Where(r => r.Tenant == tenant).ToList();
            var submitted = mine.Sum(r => r.Entries.Length);
            var stored = await AllEntriesAsync(tenant);

            // Exactly 0..n-1: no gap, no duplicate.
            Assert.Equal(Enumerable.Range(0, submitted).Select(i => (ulong)i), stored.Select(e => e.Index));

            // Every receipt names the entry stored at its index; every stored entry has exactly one receipt.
            var receipted = new HashSet<ulong>();
            foreach (var (_, entries, receipts) in mine)
            {
                Assert.Equal(entries.Length, receipts.Count);
                for (var i = 0; i < entries.Length; i++)
                {
                    Assert.Equal(entries[i].EventId, receipts[i].Id);
                    Assert.Equal(entries[i].LeafHash, receipts[i].LeafHash);
                    Assert.True(receipted.Add(receipts[i].Index), $"index {receipts[i].Index} of {tenant} was receipted twice");
                    AssertStored(entries[i], receipts[i].Index, stored[(int)receipts[i].Index]);
                }
            }

            Assert.Equal(submitted, receipted.Count);
            var head = await HeadAsync(tenant);
            Assert.Equal((ulong)submitted, head.Size);
            Assert.Equal(ReferenceMerkle.Root(stored.Select(e => e.Leaf).ToList()), head.Root);
        }
    }

    [Fact]
    public async Task An_append_for_an_unknown_tenant_does_not_fail_appends_of_other_tenants()
    {
        await CreateTenantsAsync(TenantA);

        // Queue the bad request amid many good ones so that an engine with group commit batches it with some of them.
        var before = Enumerable.Range(0, 200).Select(_ => AppendAsync(TenantA, [NewEntry()])).ToList();
        var bad = AppendAsync("no-such-tenant", [NewEntry()]);
        var after = Enumerable.Range(0, 200).Select(_ => AppendAsync(TenantA, [NewEntry()])).ToList();

        var failures = new List<string>();
        foreach (var task in before.Concat(after))
        {
            try
            {
                if (await task is not Appended)
                {
                    failures.Add("not appended");
                }
            }
            catch (StoreUnavailableException e)
            {
                failures.Add(e.Message);
            }
        }

        AppendOutcome? badOutcome = null;
        var badError = await Record.ExceptionAsync(async () => badOutcome = await bad);
        Assert.True(badError is not null || badOutcome is not Appended, "an append for an unknown tenant was accepted");
        Assert.Null(await Store.GetTreeHeadAsync("no-such-tenant", None));
        Assert.True(failures.Count == 0, $"{failures.Count} of 400 appends of {TenantA} failed beside the one for an unknown tenant: {failures.FirstOrDefault()}");
        Assert.Equal(400UL, (await HeadAsync(TenantA)).Size);
    }
}
