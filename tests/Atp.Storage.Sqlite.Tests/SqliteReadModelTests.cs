using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Storage.Contract;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>The embedded read models: projection from the outbox, its inbox de-duplication, its progress and lag.</summary>
public sealed class SqliteReadModelTests : IAsyncLifetime, IAsyncDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-readmodel-").FullName;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
    private SqliteStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), _clock, NullLogger<SqliteStore>.Instance);
        Assert.True(await _store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "local", new Residency(Residency.Strict, []), Tenant.Active, _clock.GetUtcNow()), None));
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());

    private async Task AppendAsync(params string[] actions)
    {
        var drafts = actions.Select((action, i) => new EventDraft(
            null, "acme.audit.v1", _clock.GetUtcNow().AddMinutes(-i), new Party("user", $"u-{i}", "Ada Lovelace"), action,
            [new Party("document", $"d-{i}", null)], EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(_store, _clock).AppendAsync("acme", drafts, null, None));
    }

    private Task<QueryPage> SearchAsync(string? action = null) =>
        _store.SearchAsync(new EventQuery("acme") { Action = action, Limit = 1000 }, None);

    [Fact]
    public async Task A_redelivered_outbox_row_never_projects_twice()
    {
        await AppendAsync("document.read", "document.update", "user.login");
        Assert.Equal(3, await _store.ProjectPendingAsync(1000, None));

        // The same range delivered again, as after a crash between projecting and deleting the outbox row.
        Execute("INSERT INTO outbox (tenant_id, first_idx, last_idx) VALUES ('acme', 0, 2)");
        Assert.Equal(0, await _store.ProjectPendingAsync(1000, None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Single((await SearchAsync("user.login")).Hits);
        Assert.Equal(3L, Execute("SELECT COUNT(*) FROM event_targets"));
        Assert.Equal(0L, Execute("SELECT COUNT(*) FROM outbox"));
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

        // The read models are wiped by hand; the rebuild must restore them from the log, the pending row included.
        Execute("DELETE FROM event_index; DELETE FROM event_targets; DELETE FROM event_text;");
        Assert.Equal(3UL, await _store.RebuildProjectionsAsync("acme", None));

        Assert.Equal(3, (await SearchAsync()).Hits.Count);
        Assert.Equal(0L, Execute("SELECT COUNT(*) FROM outbox"));
        Assert.Equal(0, await _store.ProjectPendingAsync(1000, None));
    }

    private object? Execute(string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
