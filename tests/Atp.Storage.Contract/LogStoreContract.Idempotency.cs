using System.Text;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>Idempotency-Keys and client-assigned event ids: a retry never stores an event twice.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private static IdempotencyClaim Claim(string key, string body) => new(key, Hash.Sha256(Encoding.UTF8.GetBytes(body)));

    [Fact]
    public async Task Replays_original_receipts_for_a_reused_idempotency_key()
    {
        await CreateTenantsAsync(TenantA);
        var claim = Claim("retry-1", "body-1");
        var original = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(3), claim));
        var headBefore = await HeadAsync(TenantA);

        // A retry of the same request: the server assigned new ids this time, yet nothing new may be stored.
        var retryEntries = NewEntries(3);
        var replay = Assert.IsType<Appended>(await AppendAsync(TenantA, retryEntries, claim));

        Assert.False(original.Replayed);
        Assert.True(replay.Replayed);
        Assert.Equal(original.Receipts, replay.Receipts);
        Assert.Equal(headBefore, await HeadAsync(TenantA));
        foreach (var entry in retryEntries)
        {
            Assert.Null(await Store.FindEventAsync(TenantA, entry.EventId, None));
        }
    }

    [Fact]
    public async Task Refuses_a_reused_idempotency_key_with_a_different_request()
    {
        await CreateTenantsAsync(TenantA);
        await AppendAsync(TenantA, NewEntries(2), Claim("retry-1", "body-1"));
        var headBefore = await HeadAsync(TenantA);

        var outcome = await AppendAsync(TenantA, NewEntries(2), Claim("retry-1", "body-2"));

        Assert.Equal(new IdempotencyKeyReused("retry-1"), outcome);
        Assert.Equal(headBefore, await HeadAsync(TenantA));
    }

    [Fact]
    public async Task Idempotency_keys_are_per_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var claim = Claim("retry-1", "body-1");
        var inA = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), claim));

        var bEntries = NewEntries(1);
        var inB = Assert.IsType<Appended>(await AppendAsync(TenantB, bEntries, claim));
        var differentBodyInB = await AppendAsync(TenantB, NewEntries(1), Claim("retry-1", "body-2"));
        var replayInA = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(2), claim));

        Assert.False(inB.Replayed);
        Assert.Equal([new Receipt(bEntries[0].EventId, 0, bEntries[0].LeafHash)], inB.Receipts);
        Assert.Equal(new IdempotencyKeyReused("retry-1"), differentBodyInB);
        Assert.True(replayInA.Replayed);
        Assert.Equal(inA.Receipts, replayInA.Receipts);
        Assert.Equal(2UL, (await HeadAsync(TenantA)).Size);
        Assert.Equal(1UL, (await HeadAsync(TenantB)).Size);
    }

    [Fact]
    public async Task A_refused_request_does_not_take_its_idempotency_key()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        await AppendNewAsync(TenantA, NewEntry(id));

        var refused = await AppendAsync(TenantA, [NewEntry(id)], Claim("retry-1", "conflicting"));
        var fixedRequest = NewEntries(1);
        var accepted = await AppendAsync(TenantA, fixedRequest, Claim("retry-1", "fixed"));

        Assert.IsType<EventIdConflict>(refused);
        var appended = Assert.IsType<Appended>(accepted);
        Assert.False(appended.Replayed);
        Assert.Equal([new Receipt(fixedRequest[0].EventId, 1, fixedRequest[0].LeafHash)], appended.Receipts);
    }

    [Fact]
    public async Task Pruning_forgets_only_idempotency_keys_older_than_the_cutoff()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var start = Clock.GetUtcNow();
        await AppendAsync(TenantA, NewEntries(1), Claim("old-a", "body"));
        await AppendAsync(TenantB, NewEntries(1), Claim("old-b", "body"));
        Clock.Advance(TimeSpan.FromHours(2));
        var recent = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("recent", "body")));

        var pruned = await Store.PruneIdempotencyKeysAsync(start.AddHours(1), None);

        Assert.Equal(2, pruned);

        // A forgotten key is free again; a kept one still replays or refuses.
        Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("old-a", "another body")));
        Assert.IsType<Appended>(await AppendAsync(TenantB, NewEntries(1), Claim("old-b", "another body")));
        var replay = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("recent", "body")));
        Assert.True(replay.Replayed);
        Assert.Equal(recent.Receipts, replay.Receipts);
        Assert.Equal(new IdempotencyKeyReused("recent"), await AppendAsync(TenantA, NewEntries(1), Claim("recent", "another body")));
        Assert.Equal(0, await Store.PruneIdempotencyKeysAsync(start.AddHours(1), None));
    }

    [Fact]
    public async Task Pruning_compares_instants_whatever_the_offset_of_the_cutoff()
    {
        await CreateTenantsAsync(TenantA);
        var start = Clock.GetUtcNow();
        await AppendAsync(TenantA, NewEntries(1), Claim("old", "body"));
        Clock.Advance(TimeSpan.FromHours(2));
        await AppendAsync(TenantA, NewEntries(1), Claim("recent", "body"));

        // One hour after start, written in UTC+05:00: the same instant as start.AddHours(1).
        var pruned = await Store.PruneIdempotencyKeysAsync(start.AddHours(1).ToOffset(TimeSpan.FromHours(5)), None);

        Assert.Equal(1, pruned);
        var replay = Assert.IsType<Appended>(await AppendAsync(TenantA, NewEntries(1), Claim("recent", "body")));
        Assert.True(replay.Replayed);
    }

    [Fact]
    public async Task Returns_the_original_receipt_for_a_re_sent_client_event()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var first = NewEntry(id);
        await AppendNewAsync(TenantA, NewEntries(2));
        var original = await AppendNewAsync(TenantA, first);
        var headBefore = await HeadAsync(TenantA);

        // The same event received again later: a different leaf (receive time) but the same content.
        Clock.Advance(TimeSpan.FromMinutes(5));
        var resent = TestEntries.Create(PayloadOf(first), Clock.GetUtcNow(), id);
        Assert.Equal(first.ContentHash, resent.ContentHash);
        Assert.NotEqual(first.LeafHash, resent.LeafHash);
        var outcome = Assert.IsType<Appended>(await AppendAsync(TenantA, [resent]));

        Assert.True(outcome.Replayed);
        Assert.Equal([new Receipt(id, 2, first.LeafHash)], outcome.Receipts);
        Assert.Equal(original, outcome.Receipts);
        Assert.Equal(headBefore, await HeadAsync(TenantA));
        AssertStored(first, 2, await Store.FindEventAsync(TenantA, id, None));
    }

    [Fact]
    public async Task Appends_the_new_events_of_a_request_that_also_re_sends_one()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var first = NewEntry(id);
        await AppendNewAsync(TenantA, first);

        var fresh = NewEntries(2);
        var resent = TestEntries.Create(PayloadOf(first), Clock.GetUtcNow().AddSeconds(1), id);
        var outcome = Assert.IsType<Appended>(await AppendAsync(TenantA, [fresh[0], resent, fresh[1]]));

        Assert.False(outcome.Replayed);
        Assert.Equal(
            [new Receipt(fresh[0].EventId, 1, fresh[0].LeafHash), new Receipt(id, 0, first.LeafHash), new Receipt(fresh[1].EventId, 2, fresh[1].LeafHash)],
            outcome.Receipts);
        Assert.Equal(new TreeHead(3, RootOf([first, fresh[0], fresh[1]])), await HeadAsync(TenantA));
    }

    [Fact]
    public async Task Refuses_a_different_event_under_a_used_client_id_with_its_position()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        await AppendNewAsync(TenantA, NewEntry(id));
        var headBefore = await HeadAsync(TenantA);
        var innocent = NewEntry();

        var outcome = await AppendAsync(TenantA, [innocent, NewEntry(id)]);

        Assert.Equal(new EventIdConflict(id, 1), outcome);
        Assert.Equal(headBefore, await HeadAsync(TenantA));
        Assert.Null(await Store.FindEventAsync(TenantA, innocent.EventId, None));
    }

    [Fact]
    public async Task Refuses_the_same_event_id_twice_in_one_request()
    {
        await CreateTenantsAsync(TenantA);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var once = NewEntry(id);

        var identical = await AppendAsync(TenantA, [NewEntry(), once, once]);
        var different = await AppendAsync(TenantA, [NewEntry(id), NewEntry(id)]);

        Assert.Equal(new EventIdConflict(id, 2), identical);
        Assert.Equal(new EventIdConflict(id, 1), different);
        Assert.Equal(new TreeHead(0, MerkleHasher.EmptyRoot), await HeadAsync(TenantA));
        Assert.Null(await Store.FindEventAsync(TenantA, id, None));
    }

    [Fact]
    public async Task Client_event_ids_are_per_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        var inA = NewEntry(id);
        var inB = NewEntry(id);
        Assert.NotEqual(inA.ContentHash, inB.ContentHash);

        var receiptA = await AppendNewAsync(TenantA, inA);
        var receiptB = await AppendNewAsync(TenantB, NewEntry(), inB);

        Assert.Equal([new Receipt(id, 0, inA.LeafHash)], receiptA);
        Assert.Equal(new Receipt(id, 1, inB.LeafHash), receiptB[1]);
        AssertStored(inA, 0, await Store.FindEventAsync(TenantA, id, None));
        AssertStored(inB, 1, await Store.FindEventAsync(TenantB, id, None));
    }

    // TestEntries puts the payload into the leaf; recover it to build the same event again.
    private static string PayloadOf(PendingEntry entry)
    {
        using var leaf = System.Text.Json.JsonDocument.Parse(entry.Leaf);
        return leaf.RootElement.GetProperty("payload").GetString()!;
    }
}
