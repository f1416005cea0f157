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
}
