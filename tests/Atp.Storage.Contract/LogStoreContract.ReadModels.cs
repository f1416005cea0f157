using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;

namespace Atp.Storage.Contract;

/// <summary>The read models: projection from the outbox, its inbox de-duplication, its progress and lag, rebuild.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private async Task AppendEventsAsync(params string[] actions)
    {
        var drafts = actions.Select((action, i) => new EventDraft(
            null, "acme.audit.v1", Clock.GetUtcNow().AddMinutes(-i), new Party("user", $"u-{i}", "Ada Lovelace"), action,
            [new Party("document", $"d-{i}", null)], EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendAsync(TenantA, drafts, null, None));
    }

    private Task<QueryPage> SearchAsync(string? action = null, string? text = null) =>
        Store.SearchAsync(new EventQuery(TenantA) { Action = action, Text = text, Limit = 1000 }, None);

    [Fact]
    public async Task A_redelivered_outbox_row_never_projects_twice()
    {
        await CreateTenantsAsync(TenantA);
        await AppendEventsAsync("document.read", "document.update", "user.login");
        Assert.Equal(3, await Store.ProjectPendingAsync(1000, None));

        await RedeliverOutboxAsync(TenantA, 0, 2);
        Assert.Equal(0, await Store.ProjectPendingAsync(1000, None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Single((await SearchAsync("user.login")).Hits);
        Assert.Equal(3, (await SearchAsync(text: "lovelace")).Hits.Count);
        Assert.Null(await Store.OldestUnprojectedAsync(None));
    }

    [Fact]
    public async Task Nothing_is_searchable_before_projection_and_the_lag_names_the_oldest_waiting_entry()
    {
        await CreateTenantsAsync(TenantA);
        await AppendEventsAsync("document.read");
        var firstReceived = Clock.GetUtcNow();
        Clock.Advance(TimeSpan.FromSeconds(3));
        await AppendEventsAsync("document.update");

        Assert.Empty((await SearchAsync()).Hits);
        Assert.Equal(new ProjectionStatus(0, 2), await Store.GetProjectionStatusAsync(TenantA, None));
        Assert.Equal(firstReceived, await Store.OldestUnprojectedAsync(None));

        Assert.Equal(2, await Store.ProjectPendingAsync(1000, None));

        Assert.Equal(2, (await SearchAsync()).Hits.Count);
        Assert.Equal(new ProjectionStatus(2, 2), await Store.GetProjectionStatusAsync(TenantA, None));
        Assert.Null(await Store.OldestUnprojectedAsync(None));
    }

    [Fact]
    public async Task The_outbox_backlog_counts_every_tenants_waiting_entries_until_they_are_projected()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        Assert.Equal(0, await Store.CountOutboxBacklogAsync(1000, None));

        await AppendEventsAsync("document.read", "document.update", "user.login");
        var draft = new EventDraft(null, "acme.audit.v1", Clock.GetUtcNow(), new Party("user", "u-b", null), "user.login", [], EventOutcome.Success, null, null);
        Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendAsync(TenantB, [draft, draft with { Action = "user.logout" }], null, None));

        // Counted across tenants (the gauge is the cell's), and over at most the given number of oldest rows.
        Assert.Equal(5, await Store.CountOutboxBacklogAsync(1000, None));
        Assert.Equal(3, await Store.CountOutboxBacklogAsync(1, None));

        // A turn may project one tenant only (PostgreSQL claims a tenant at a time): the backlog shrinks by each turn.
        var projected = await Store.ProjectPendingAsync(1000, None);
        Assert.Equal(5 - projected, await Store.CountOutboxBacklogAsync(1000, None));
        for (var turn = 0; turn < 10 && projected < 5; turn++)
        {
            projected += await Store.ProjectPendingAsync(1000, None);
        }

        Assert.Equal(5, projected);
        Assert.Equal(0, await Store.CountOutboxBacklogAsync(1000, None));
    }

    [Fact]
    public async Task A_rebuild_reprojects_the_log_alone_and_empties_the_outbox()
    {
        await CreateTenantsAsync(TenantA);
        await AppendEventsAsync("document.read", "document.update");
        await Store.ProjectPendingAsync(1000, None);
        await AppendEventsAsync("user.login");

        await WipeReadModelsAsync();
        Assert.Empty((await SearchAsync()).Hits);
        Assert.Equal(3UL, await Store.RebuildProjectionsAsync(TenantA, None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Equal(new ProjectionStatus(3, 3), await Store.GetProjectionStatusAsync(TenantA, None));
        Assert.Null(await Store.OldestUnprojectedAsync(None));
        Assert.Equal(0, await Store.ProjectPendingAsync(1000, None));
    }

    [Fact]
    public async Task Filters_match_values_with_quotes_backslashes_colons_spaces_and_accents_exactly()
    {
        await CreateTenantsAsync(TenantA);
        var at = Clock.GetUtcNow();
        EventDraft Draft(int i, Party actor, string action, Party target) =>
            new(null, "acme.audit.v1", at.AddMinutes(-i), actor, action, [target], EventOutcome.Success, null, null);
        List<EventDraft> drafts =
        [
            Draft(0, new Party("user", @"o'brien\x", "Zoë O'Brien"), "document.update", new Party("doc:type", "id'1", null)),
            Draft(1, new Party("user", "o'brien", null), "user.login", new Party("doc", "type:id'1", null)),
            Draft(2, new Party("user", "a b", null), "document.view", new Party("document", "d 1", "Q3 plan")),
        ];
        Assert.IsType<Appended>(await new IngestionService(Store, Clock).AppendAsync(TenantA, drafts, null, None));
        Assert.Equal(3, await Store.ProjectPendingAsync(1000, None));

        async Task<ulong[]> Found(EventQuery query) =>
            [.. (await Store.SearchAsync(query with { Limit = 100 }, None)).Hits.Select(h => h.Entry.Index).Order()];

        Assert.Equal(new ulong[] { 0UL }, await Found(new EventQuery(TenantA) { ActorId = @"o'brien\x" }));
        Assert.Equal(new ulong[] { 1UL }, await Found(new EventQuery(TenantA) { ActorId = "o'brien" }));
        Assert.Equal(new ulong[] { 2UL }, await Found(new EventQuery(TenantA) { ActorId = "a b" }));
        Assert.Equal(new ulong[] { 0UL }, await Found(new EventQuery(TenantA) { TargetType = "doc:type", TargetId = "id'1" }));
        Assert.Equal(new ulong[] { 1UL }, await Found(new EventQuery(TenantA) { TargetType = "doc", TargetId = "type:id'1" }));
        Assert.Equal(new ulong[] { 1UL }, await Found(new EventQuery(TenantA) { TargetType = "doc" }));
        Assert.Equal(new ulong[] { 0UL }, await Found(new EventQuery(TenantA) { TargetId = "id'1" }));
        Assert.Equal(new ulong[] { 2UL }, await Found(new EventQuery(TenantA) { TargetId = "d 1" }));
        Assert.Equal(new ulong[] { 0UL, 2UL }, await Found(new EventQuery(TenantA) { Action = "document.", ActionIsPrefix = true }));
        Assert.Equal(new ulong[] { 0UL }, await Found(new EventQuery(TenantA) { Text = "zoë" }));
        Assert.Equal(new ulong[] { 0UL }, await Found(new EventQuery(TenantA) { Text = "O'Brien" }));
        Assert.Equal(new ulong[] { 2UL }, await Found(new EventQuery(TenantA) { Text = "q3 PLAN" }));
        Assert.Empty(await Found(new EventQuery(TenantA) { ActorId = "o'brien\\" }));

        // A text filter without a word matches nothing on both engines, alone or with other filters.
        Assert.Empty(await Found(new EventQuery(TenantA) { Text = "!" }));
        Assert.Empty(await Found(new EventQuery(TenantA) { Text = "! ?" }));
        Assert.Empty(await Found(new EventQuery(TenantA) { Text = "!", ActorId = "o'brien" }));
    }
}
