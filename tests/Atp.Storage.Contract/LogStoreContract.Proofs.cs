using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>Proofs built from the store's persisted nodes; restart; checkpoints.</summary>
public abstract partial class LogStoreContract<TStore>
{
    [Fact]
    public async Task Inclusion_and_consistency_proofs_from_the_store_verify_for_many_sizes()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var leaves = new List<PendingEntry>();
        var heads = new List<TreeHead>();
        foreach (var count in new[] { 1, 1, 1, 1, 1, 2, 1, 7, 1, 15, 3, 33 })
        {
            var entries = NewEntries(count);
            await AppendNewAsync(TenantA, entries);

            // Interleave another tenant so its nodes sit beside tenant A's.
            await AppendNewAsync(TenantB, NewEntries(count));
            leaves.AddRange(entries);
            heads.Add(await HeadAsync(TenantA));
        }

        var proofs = new ProofBuilder(Store.NodeReader(TenantA));
        foreach (var head in heads)
        {
            Assert.Equal(RootOf(leaves.Take((int)head.Size)), head.Root);
            Assert.Equal(head.Root, await proofs.RootAsync(head.Size, None));
            for (ulong index = 0; index < head.Size; index++)
            {
                var proof = await proofs.InclusionProofAsync(index, head.Size, None);
                var leafHash = leaves[(int)index].LeafHash;
                Assert.True(InclusionProof.Verify(index, head.Size, leafHash, proof, head.Root).IsValid, $"inclusion of {index} in {head.Size}");
            }
        }

        foreach (var older in heads)
        {
            foreach (var newer in heads.Where(h => h.Size > older.Size))
            {
                var proof = await proofs.ConsistencyProofAsync(older.Size, newer.Size, None);
                Assert.True(ConsistencyProof.Verify(older.Size, newer.Size, proof, older.Root, newer.Root).IsValid, $"consistency {older.Size} -> {newer.Size}");
            }
        }

        // The checks above are not vacuous: a proof against another tenant's root of the same size fails.
        var last = heads[^1];
        var rootOfB = await new ProofBuilder(Store.NodeReader(TenantB)).RootAsync(last.Size, None);
        Assert.NotEqual(last.Root, rootOfB);
        var someProof = await proofs.InclusionProofAsync(3, last.Size, None);
        Assert.False(InclusionProof.Verify(3, last.Size, leaves[3].LeafHash, someProof, rootOfB).IsValid);
    }

    [Fact]
    public async Task A_reopened_store_continues_the_same_tree_and_its_proofs_verify()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var before = NewEntries(13);
        await AppendNewAsync(TenantA, before[..6]);
        await AppendNewAsync(TenantA, before[6..]);
        var inB = NewEntries(3);
        await AppendNewAsync(TenantB, inB);
        var clientId = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var clientEvent = NewEntry(clientId);
        var claim = new IdempotencyClaim("retry-1", Hash.Sha256("body"u8));
        var claimed = Assert.IsType<Appended>(await AppendAsync(TenantA, [clientEvent], claim));
        var headBefore = await HeadAsync(TenantA);
        Assert.Equal(14UL, headBefore.Size);

        await ReopenAsync();

        Assert.Equal(headBefore, await HeadAsync(TenantA));
        AssertStored(before[5], 5, await Store.GetEntryAsync(TenantA, 5, None));

        // Retries that arrive after the restart are still recognised.
        var replay = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), claim));
        Assert.True(replay.Replayed);
        Assert.Equal(claimed.Receipts, replay.Receipts);
        var resent = Assert.IsType<Appended>(await AppendAsync(TenantA, [TestEntries.Create(PayloadOf(clientEvent), Clock.GetUtcNow().AddSeconds(9), clientId)]));
        Assert.Equal([new Receipt(clientId, 13, clientEvent.LeafHash)], resent.Receipts);

        var after = NewEntries(6);
        var r1 = await AppendNewAsync(TenantA, after[..1]);
        var r2 = await AppendNewAsync(TenantA, after[1..]);
        Assert.Equal([14UL], r1.Select(r => r.Index));
        Assert.Equal([15UL, 16UL, 17UL, 18UL, 19UL], r2.Select(r => r.Index));

        var all = before.Append(clientEvent).Concat(after).ToList();
        var headAfter = await HeadAsync(TenantA);
        Assert.Equal(new TreeHead(20, RootOf(all)), headAfter);
        Assert.Equal(new TreeHead(3, RootOf(inB)), await HeadAsync(TenantB));

        var proofs = new ProofBuilder(Store.NodeReader(TenantA));
        var consistency = await proofs.ConsistencyProofAsync(headBefore.Size, headAfter.Size, None);
        Assert.True(ConsistencyProof.Verify(headBefore.Size, headAfter.Size, consistency, headBefore.Root, headAfter.Root).IsValid);
        foreach (var index in new ulong[] { 0, 5, 12, 13, 14, 19 })
        {
            var inclusion = await proofs.InclusionProofAsync(index, headAfter.Size, None);
            Assert.True(InclusionProof.Verify(index, headAfter.Size, all[(int)index].LeafHash, inclusion, headAfter.Root).IsValid, $"inclusion of {index}");
        }
    }

    [Fact]
    public async Task Lists_a_log_as_unsealed_until_a_checkpoint_covers_its_head()
    {
        await CreateTenantsAsync(TenantA);

        // A new log has nothing signed yet: its empty head is listed so it gets a checkpoint of size 0.
        Assert.Equal([new UnsealedLog(TenantA, new TreeHead(0, MerkleHasher.EmptyRoot))], await Store.ListUnsealedAsync(None));
        await Store.SaveCheckpointAsync(TenantA, 0, "note-0", Clock.GetUtcNow(), None);
        Assert.Empty(await Store.ListUnsealedAsync(None));

        var entries = NewEntries(3);
        await AppendNewAsync(TenantA, entries);
        Assert.Equal([new UnsealedLog(TenantA, new TreeHead(3, RootOf(entries)))], await Store.ListUnsealedAsync(None));

        await Store.SaveCheckpointAsync(TenantA, 3, "note-3", Clock.GetUtcNow(), None);
        Assert.Empty(await Store.ListUnsealedAsync(None));
    }

    [Fact]
    public async Task Lists_every_logs_committed_size_by_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await AppendNewAsync(TenantB, NewEntries(2));

        var sizes = await Store.ListLogSizesAsync(None);

        Assert.Equal([new LogSize(TenantA, 0), new LogSize(TenantB, 2)], sizes.Where(s => s.TenantId is TenantA or TenantB).ToArray());
    }

    [Fact]
    public async Task Lists_only_the_logs_that_grew_past_their_latest_checkpoint()
    {
        await CreateTenantsAsync(TenantA, TenantB, TenantC);
        await AppendNewAsync(TenantA, NewEntries(2));
        await AppendNewAsync(TenantB, NewEntries(4));
        await Store.SaveCheckpointAsync(TenantA, 2, "a-2", Clock.GetUtcNow(), None);
        await Store.SaveCheckpointAsync(TenantB, 4, "b-4", Clock.GetUtcNow(), None);
        await Store.SaveCheckpointAsync(TenantC, 0, "c-0", Clock.GetUtcNow(), None);

        await AppendNewAsync(TenantB, NewEntries(1));
        var unsealed = await Store.ListUnsealedAsync(None);

        var log = Assert.Single(unsealed);
        Assert.Equal(TenantB, log.TenantId);
        Assert.Equal(await HeadAsync(TenantB), log.Head);
        Assert.Equal(5UL, log.Head.Size);
    }

    [Fact]
    public async Task Returns_the_newest_checkpoint_of_the_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        Assert.Null(await Store.GetLatestCheckpointAsync(TenantA, None));
        var at = Clock.GetUtcNow();
        await AppendNewAsync(TenantA, NewEntries(5));
        await AppendNewAsync(TenantB, NewEntries(9));

        await Store.SaveCheckpointAsync(TenantA, 0, "a-0", at, None);
        await Store.SaveCheckpointAsync(TenantA, 5, "a-5", at.AddSeconds(2), None);
        await Store.SaveCheckpointAsync(TenantA, 3, "a-3", at.AddSeconds(3), None);
        await Store.SaveCheckpointAsync(TenantB, 9, "b-9", at.AddSeconds(4), None);

        Assert.Equal(new StoredCheckpoint(5, "a-5", at.AddSeconds(2)), await Store.GetLatestCheckpointAsync(TenantA, None));
        Assert.Equal(new StoredCheckpoint(9, "b-9", at.AddSeconds(4)), await Store.GetLatestCheckpointAsync(TenantB, None));
        Assert.Null(await Store.GetLatestCheckpointAsync("no-such-tenant", None));
    }

    [Fact]
    public async Task Finds_the_smallest_checkpoint_at_or_after_a_size_in_the_tenant_only()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var at = Clock.GetUtcNow();
        await AppendNewAsync(TenantA, NewEntries(9));
        await AppendNewAsync(TenantB, NewEntries(7));
        await Store.SaveCheckpointAsync(TenantA, 5, "a-5", at, None);
        await Store.SaveCheckpointAsync(TenantA, 2, "a-2", at.AddSeconds(1), None);
        await Store.SaveCheckpointAsync(TenantA, 9, "a-9", at.AddSeconds(2), None);
        await Store.SaveCheckpointAsync(TenantB, 7, "b-7", at.AddSeconds(3), None);

        Assert.Equal(new StoredCheckpoint(2, "a-2", at.AddSeconds(1)), await Store.GetCheckpointAtOrAfterAsync(TenantA, 0, None));
        Assert.Equal(new StoredCheckpoint(5, "a-5", at), await Store.GetCheckpointAtOrAfterAsync(TenantA, 3, None));
        Assert.Equal(new StoredCheckpoint(5, "a-5", at), await Store.GetCheckpointAtOrAfterAsync(TenantA, 5, None));
        Assert.Equal(new StoredCheckpoint(9, "a-9", at.AddSeconds(2)), await Store.GetCheckpointAtOrAfterAsync(TenantA, 6, None));

        // Tenant B's larger checkpoint is not tenant A's, and no size is too large to ask about.
        Assert.Null(await Store.GetCheckpointAtOrAfterAsync(TenantA, 10, None));
        Assert.Null(await Store.GetCheckpointAtOrAfterAsync(TenantA, ulong.MaxValue, None));
        Assert.Equal(new StoredCheckpoint(7, "b-7", at.AddSeconds(3)), await Store.GetCheckpointAtOrAfterAsync(TenantB, 6, None));
        Assert.Null(await Store.GetCheckpointAtOrAfterAsync("no-such-tenant", 0, None));
    }

    [Fact]
    public async Task Saving_a_checkpoint_twice_at_the_same_size_keeps_the_first()
    {
        await CreateTenantsAsync(TenantA);
        await AppendNewAsync(TenantA, NewEntries(2));
        var at = Clock.GetUtcNow();

        await Store.SaveCheckpointAsync(TenantA, 2, "first", at, None);
        await Store.SaveCheckpointAsync(TenantA, 2, "second", at.AddSeconds(1), None);

        Assert.Equal(new StoredCheckpoint(2, "first", at), await Store.GetLatestCheckpointAsync(TenantA, None));
        Assert.Empty(await Store.ListUnsealedAsync(None));
    }
}
