using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// Retention's purge (docs/operations.md, "Retention"): the content of entries is removed in the transaction that
/// appends their purge record, and only then; leaf hashes and nodes stay, so the tree is the tree it was; the
/// projector drops the purged entries' read-model rows when it projects the record, once however often it is delivered.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    private async Task<IReadOnlyList<Receipt>> AppendDraftsAsync(string tenantId, params string[] actors)
    {
        var drafts = actors.Select(actor => new EventDraft(
            null, "acme.audit.v1", Clock.GetUtcNow(), new Party("user", actor, "Grace Hopper"), "document.read",
            [new Party("document", $"doc-{actor}", null)], EventOutcome.Success, null, null)).ToList();
        return Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendAsync(tenantId, drafts, null, CancellationToken.None)).Receipts;
    }

    private Task<AppendOutcome> AppendPurgeAsync(string tenantId, EntryPurge purge, params PendingEntry[] record) =>
        Store.AppendAsync(new AppendRequest(tenantId, record, null) { Purge = purge }, CancellationToken.None);

    [Fact]
    public async Task A_purge_removes_the_content_with_its_record_keeps_every_hash_and_only_then()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var entries = NewEntries(5);
        await AppendNewAsync(TenantA, entries);
        await AppendNewAsync(TenantB, NewEntries(2));
        var rootBefore = (await HeadAsync(TenantA)).Root;
        var usageBefore = await Store.GetStorageUsageAsync(TenantA, CancellationToken.None);
        var purgedBytes = entries[1].Leaf.Length + entries[3].Leaf.Length;

        // A purge naming an entry that is not before its record, or a record of two entries, is refused whole.
        await Assert.ThrowsAnyAsync<Exception>(() => AppendPurgeAsync(TenantA, new EntryPurge([1, 9], 0), NewEntry()));
        await Assert.ThrowsAnyAsync<Exception>(() => AppendPurgeAsync(TenantA, new EntryPurge([1], 0), NewEntry(), NewEntry()));
        Assert.Equal(5UL, (await HeadAsync(TenantA)).Size);
        AssertStored(entries[1], 1, await Store.GetEntryAsync(TenantA, 1, CancellationToken.None));

        var record = NewEntry();
        var receipts = Assert.IsType<Appended>(await AppendPurgeAsync(TenantA, new EntryPurge([1, 3], purgedBytes), record)).Receipts;
        Assert.Equal(5UL, Assert.Single(receipts).Index);
        await ReopenAsync();

        // Purged: no bytes, the record's index, the same leaf hash; the rest as stored; the other tenant untouched.
        foreach (var index in new ulong[] { 1, 3 })
        {
            var purged = await Store.GetEntryAsync(TenantA, index, CancellationToken.None);
            Assert.NotNull(purged);
            Assert.Empty(purged.Leaf);
            Assert.Equal(5UL, purged.PurgedBy);
            Assert.Equal(entries[index].LeafHash, purged.LeafHash);
            Assert.Equal(entries[index].EventId, (await Store.FindEventAsync(TenantA, entries[index].EventId, CancellationToken.None))!.EventId);
        }

        foreach (var index in new ulong[] { 0, 2, 4 })
        {
            var kept = await Store.GetEntryAsync(TenantA, index, CancellationToken.None);
            AssertStored(entries[index], index, kept);
            Assert.Null(kept!.PurgedBy);
        }

        Assert.All(await AllEntriesAsync(TenantB), e => Assert.Null(e.PurgedBy));
        AssertStored(record, 5, await Store.GetEntryAsync(TenantA, 5, CancellationToken.None));

        // The tree is the same tree grown by the record: the old root is a prefix (consistency), every node readable.
        var head = await HeadAsync(TenantA);
        Assert.Equal(6UL, head.Size);
        Assert.Equal(RootOf([.. entries, record]), head.Root);
        var builder = new ProofBuilder(Store.NodeReader(TenantA));
        var consistency = await builder.ConsistencyProofAsync(5, 6, CancellationToken.None);
        Assert.True(ConsistencyProof.Verify(5, 6, consistency, rootBefore, head.Root).IsValid);
        var inclusion = await builder.InclusionProofAsync(3, 6, CancellationToken.None);
        Assert.True(InclusionProof.Verify(3, 6, entries[3].LeafHash, inclusion, head.Root).IsValid);

        // The stored bytes count what is left; the events count stays (the entries stay in the tree).
        var usage = await Store.GetStorageUsageAsync(TenantA, CancellationToken.None);
        Assert.Equal(usageBefore!.StoredBytes - purgedBytes + record.Leaf.Length, usage!.StoredBytes);
        Assert.Equal(6UL, usage.StoredEvents);

        // A second purge of an entry purged already fails whole: no record, nothing else purged.
        await Assert.ThrowsAnyAsync<Exception>(() => AppendPurgeAsync(TenantA, new EntryPurge([2, 3], 1), NewEntry()));
        Assert.Equal(6UL, (await HeadAsync(TenantA)).Size);
        AssertStored(entries[2], 2, await Store.GetEntryAsync(TenantA, 2, CancellationToken.None));
    }

    [Fact]
    public async Task Projecting_a_purge_record_drops_the_purged_entries_from_search_once_however_often_it_is_delivered()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var receipts = await AppendDraftsAsync(TenantA, "u-purged", "u-kept");
        await AppendDraftsAsync(TenantB, "u-purged");
        await ProjectAllAsync();
        Assert.Single((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-purged" }, CancellationToken.None)).Hits);

        var purged = await Store.GetEntryAsync(TenantA, receipts[0].Index, CancellationToken.None);
        var recordDraft = new EventDraft(null, "atp.retention.purge.v1", Clock.GetUtcNow(), new Party("service", "atp-retention", null), "log.purge", [], EventOutcome.Success, null, null);
        var record = Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendPurgeAsync(
            TenantA, recordDraft, new EntryPurge([receipts[0].Index], purged!.Leaf.Length), null, CancellationToken.None)).Receipts[0];

        // Between the commit and the projection of the record, search already leaves the purged entry out.
        Assert.Empty((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-purged" }, CancellationToken.None)).Hits);
        await ProjectAllAsync();
        await RedeliverOutboxAsync(TenantA, record.Index, record.Index);
        await ProjectAllAsync();

        Assert.Empty((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-purged" }, CancellationToken.None)).Hits);
        Assert.Empty((await Store.SearchAsync(new EventQuery(TenantA) { TargetId = "doc-u-purged" }, CancellationToken.None)).Hits);
        Assert.Single((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-kept" }, CancellationToken.None)).Hits);
        Assert.Single((await Store.SearchAsync(new EventQuery(TenantB) { ActorId = "u-purged" }, CancellationToken.None)).Hits);
        Assert.Empty(await Store.ListDeadLettersAsync(TenantA, 10, CancellationToken.None));

        // A rebuild from the log leaves the purged entry out too, and makes no dead letter of it.
        await Store.RebuildProjectionsAsync(TenantA, CancellationToken.None);
        Assert.Empty((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-purged" }, CancellationToken.None)).Hits);
        Assert.Single((await Store.SearchAsync(new EventQuery(TenantA) { ActorId = "u-kept" }, CancellationToken.None)).Hits);
        Assert.Empty(await Store.ListDeadLettersAsync(TenantA, 10, CancellationToken.None));
    }
}
