using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;

namespace Atp.Storage.Contract;

/// <summary>The events about a data subject: the actor and target read models merged, each event once, one tenant only.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private async Task AppendAboutAsync(string tenantId, DateTimeOffset at, params (string Actor, string[] Targets)[] events)
    {
        var drafts = events.Select((e, i) => new EventDraft(
            null, "acme.audit.v1", at.AddMinutes(i), new Party("user", e.Actor, "Ada"), "document.update",
            e.Targets.Select((t, n) => new Party(n % 2 == 0 ? "document" : "user", t, null)).ToList(), EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendAsync(tenantId, drafts, null, None));
    }

    private async Task<ulong[]> SubjectIndexesAsync(string tenantId, string subject, int limit = 1000, ulong snapshot = ulong.MaxValue)
    {
        var found = new List<ulong>();
        QueryPosition? after = null;
        for (var page = 0; page < 100; page++)
        {
            var result = await Store.ListSubjectEventsAsync(new SubjectQuery(tenantId, subject) { Limit = limit, After = after, SnapshotSize = snapshot }, None);
            Assert.All(result.Hits, h => Assert.Equal(h.Position.Index, h.Entry!.Index));
            found.AddRange(result.Hits.Select(h => h.Position.Index));
            if (!result.HasMore)
            {
                return [.. found];
            }

            after = result.Hits[^1].Position;
        }

        throw new InvalidOperationException("the pages never ended");
    }

    [Fact]
    public async Task A_subjects_events_are_those_naming_it_as_actor_or_any_target_each_once_oldest_first()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        var at = Clock.GetUtcNow();
        await AppendAboutAsync(
            TenantA,
            at,
            ("s-1", ["d-1"]),          // 0: actor
            ("u-2", ["d-1", "s-1"]),   // 1: second target
            ("s-1", ["s-1"]),          // 2: actor and target
            ("u-2", ["s-1", "s-1"]),   // 3: twice a target
            ("u-2", ["d-1"]),          // 4: another subject's
            ("s-10", ["s-"]));         // 5: ids that only begin or end alike

        // The same subject id in another tenant: never in tenant A's answer.
        await AppendAboutAsync(TenantB, at, ("s-1", ["s-1"]));
        await ProjectAllAsync();

        Assert.Equal(new ulong[] { 0, 1, 2, 3 }, await SubjectIndexesAsync(TenantA, "s-1"));
        Assert.Equal(new ulong[] { 0 }, await SubjectIndexesAsync(TenantB, "s-1"));
        Assert.Equal(new ulong[] { 1, 3, 4 }, await SubjectIndexesAsync(TenantA, "u-2"));
        Assert.Empty(await SubjectIndexesAsync(TenantA, "s"));
        Assert.Empty(await SubjectIndexesAsync("tenant-unknown", "s-1"));
    }

    [Fact]
    public async Task A_subjects_events_page_in_occurrence_order_every_one_once_and_none_past_the_snapshot()
    {
        await CreateTenantsAsync(TenantA);
        var at = Clock.GetUtcNow();

        // Out of log order in time, so the order is (occurredAt, index), not the index alone.
        var events = Enumerable.Range(0, 9).Select(i => (i % 3 == 0 ? "s'1\\x" : "u-2", i % 3 == 1 ? new[] { "s'1\\x", "s'1\\x" } : ["d-1"])).ToArray();
        await AppendAboutAsync(TenantA, at, events);
        await AppendAboutAsync(TenantA, at.AddHours(-1), events);
        await ProjectAllAsync();

        var all = await SubjectIndexesAsync(TenantA, "s'1\\x");
        Assert.Equal(new ulong[] { 9, 10, 12, 13, 15, 16, 0, 1, 3, 4, 6, 7 }, all);
        Assert.Equal(all, await SubjectIndexesAsync(TenantA, "s'1\\x", limit: 1));
        Assert.Equal(all, await SubjectIndexesAsync(TenantA, "s'1\\x", limit: 5));
        Assert.Equal(new ulong[] { 0, 1, 3, 4, 6, 7 }, await SubjectIndexesAsync(TenantA, "s'1\\x", limit: 5, snapshot: 9));
    }

    [Fact]
    public async Task A_purged_entry_the_projector_has_not_dropped_yet_is_listed_without_its_entry_never_as_damage()
    {
        await CreateTenantsAsync(TenantA);
        await AppendAboutAsync(TenantA, Clock.GetUtcNow(), ("s-1", ["d-1"]), ("s-1", ["d-2"]));
        await ProjectAllAsync();
        var purged = await Store.GetEntryAsync(TenantA, 0, None);

        // The purge record is appended but not projected: the read models still list entry 0.
        Assert.IsType<Appended>(await Store.AppendAsync(new AppendRequest(TenantA, [NewEntry()], null) { Purge = new EntryPurge([0], purged!.Leaf.Length) }, None));
        var page = await Store.ListSubjectEventsAsync(new SubjectQuery(TenantA, "s-1") { Limit = 10, SnapshotSize = ulong.MaxValue }, None);

        Assert.Equal(new ulong[] { 0, 1 }, page.Hits.Select(h => h.Position.Index));
        Assert.Null(page.Hits[0].Entry);
        Assert.Equal(1UL, page.Hits[1].Entry!.Index);
    }
}
