using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Postgres.Tests;

/// <summary>The PostgreSQL read models: projection from the outbox, its inbox de-duplication, rebuild, lag.</summary>
public sealed class PostgresReadModelTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IAsyncLifetime, IAsyncDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
    private PostgresStore _store = null!;

    public async Task InitializeAsync()
    {
        await database.TruncateAsync();
        _store = new PostgresStore(Options.Create(new PostgresStoreOptions { ConnectionString = database.AppConnectionString }), _clock, NullLogger<PostgresStore>.Instance);
        Assert.True(await _store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "local", new Residency(Residency.Strict, []), Tenant.Active, _clock.GetUtcNow()), None));
    }

    public async Task DisposeAsync() => await _store.DisposeAsync();

    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());

    private async Task AppendAsync(params string[] actions)
    {
        var drafts = actions.Select((action, i) => new EventDraft(
            null, "acme.audit.v1", _clock.GetUtcNow().AddMinutes(-i), new Party("user", $"u-{i}", "Ada Lovelace"), action,
            [new Party("document", $"d-{i}", null)], EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(_store, _clock).AppendAsync("acme", drafts, null, None));
    }

    private Task<QueryPage> SearchAsync(string? action = null, string? text = null) =>
        _store.SearchAsync(new EventQuery("acme") { Action = action, Text = text, Limit = 1000 }, None);

    [Fact]
    public async Task A_redelivered_outbox_row_never_projects_twice()
    {
        await AppendAsync("document.read", "document.update", "user.login");
        Assert.Equal(3, await _store.ProjectPendingAsync(1000, None));

        await database.ExecuteAsOwnerAsync("INSERT INTO atp.outbox (tenant_id, first_idx, last_idx) VALUES ('acme', 0, 2)");
        Assert.Equal(0, await _store.ProjectPendingAsync(1000, None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Single((await SearchAsync("user.login")).Hits);
        Assert.Equal(3, (await SearchAsync(text: "lovelace")).Hits.Count);
        Assert.Equal(3L, await database.ExecuteAsOwnerAsync("SELECT count(*) FROM atp.event_targets"));
        Assert.Equal(0L, await database.ExecuteAsOwnerAsync("SELECT count(*) FROM atp.outbox"));
    }

    [Fact]
    public async Task Nothing_is_searchable_before_projection_and_the_lag_names_the_oldest_waiting_entry()
    {
        await AppendAsync("document.read");
        var firstReceived = _clock.GetUtcNow();
        _clock.Advance(TimeSpan.FromSeconds(3));
        await AppendAsync("document.update");

        Assert.Empty((await SearchAsync()).Hits);
        Assert.Equal(new ProjectionStatus(0, 2), await _store.GetProjectionStatusAsync("acme", None));
        Assert.Equal(firstReceived, await _store.OldestUnprojectedAsync(None));

        Assert.Equal(2, await _store.ProjectPendingAsync(1000, None));

        Assert.Equal(2, (await SearchAsync()).Hits.Count);
        Assert.Equal(new ProjectionStatus(2, 2), await _store.GetProjectionStatusAsync("acme", None));
        Assert.Null(await _store.OldestUnprojectedAsync(None));
    }

    [Fact]
    public async Task A_rebuild_reprojects_the_log_alone_and_empties_the_outbox()
    {
        await AppendAsync("document.read", "document.update");
        await _store.ProjectPendingAsync(1000, None);
        await AppendAsync("user.login");

        await database.ExecuteAsOwnerAsync("DELETE FROM atp.event_index; DELETE FROM atp.event_targets;");
        Assert.Equal(3UL, await _store.RebuildProjectionsAsync("acme", None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Equal(0L, await database.ExecuteAsOwnerAsync("SELECT count(*) FROM atp.outbox"));
        Assert.Equal(0, await _store.ProjectPendingAsync(1000, None));
    }
}
