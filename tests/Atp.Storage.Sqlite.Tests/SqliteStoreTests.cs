using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Storage.Contract;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>What only the embedded engine promises: its file, its journal mode, its schema version.</summary>
public sealed class SqliteStoreTests : IAsyncLifetime, IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-sqlite-").FullName;
    private SqliteStore? _store;

    private SqliteStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    public Task InitializeAsync()
    {
        _store = Open();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_store is { } store)
        {
            _store = null;
            await store.DisposeAsync();
        }

        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());

    [Fact]
    public void Keeps_its_database_in_the_data_directory_in_wal_mode()
    {
        Assert.Equal(Path.Combine(_directory, "atp.db"), Store.DatabasePath);
        Assert.True(File.Exists(Store.DatabasePath));
        Assert.True(Store.IsWriterRunning);
        Assert.Equal("wal", Scalar("PRAGMA journal_mode"));
    }

    [Fact]
    public async Task An_acknowledged_append_is_in_the_database_file_when_the_call_returns()
    {
        var tenant = new Tenant("acme", "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch);
        Assert.True(await Store.TryCreateTenantAsync(tenant, CancellationToken.None));
        var entry = TestEntries.Create("durable", DateTimeOffset.UnixEpoch);

        var outcome = await Store.AppendAsync(new AppendRequest("acme", [entry], null), CancellationToken.None);

        Assert.IsType<Appended>(outcome);

        // Read through a separate, unpooled connection: what another process would see after the receipt.
        Assert.Equal(1L, Scalar("SELECT COUNT(*) FROM log_entries WHERE id >> 40 = (SELECT num FROM tenants WHERE id = 'acme')"));
        Assert.Equal(1L, Scalar("SELECT size FROM tree_heads WHERE tenant_id = 'acme'"));
    }

    [Fact]
    public async Task Refuses_to_open_a_database_written_by_a_newer_schema()
    {
        await Store.DisposeAsync();
        _store = null;
        Scalar("INSERT INTO schema_version (version) VALUES (99)");

        var error = Assert.Throws<InvalidOperationException>(Open);

        Assert.Contains("newer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upgrades_a_version_1_database_in_place_keeping_its_tenants()
    {
        Assert.True(await Store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));
        Assert.True(await Store.TryCreateTenantAsync(new Tenant("empty", "Empty", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));
        var drafts = Enumerable.Range(0, 7).Select(i => new Atp.Core.Events.EventDraft(
            null, "acme.audit.v1", DateTimeOffset.UnixEpoch.AddMinutes(i), new Atp.Core.Events.Party("user", $"u-{i}", null), "document.read",
            [new Atp.Core.Events.Party("document", $"d-{i}", null)], Atp.Core.Events.EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new Atp.Core.Ingestion.IngestionService(Store, TimeProvider.System).AppendAsync("acme", drafts, null, CancellationToken.None));
        await Store.DisposeAsync();
        _store = null;

        // Turn the file back into what the first release wrote.
        Scalar("""
            ALTER TABLE tenants DROP COLUMN require_signed_requests;
            ALTER TABLE tenants DROP COLUMN ingest_per_second;
            ALTER TABLE tenants DROP COLUMN query_per_second;
            ALTER TABLE api_keys DROP COLUMN sealed_signing_secret;
            ALTER TABLE api_keys DROP COLUMN last_region;
            ALTER TABLE tenants DROP COLUMN ingest_events_per_second;
            ALTER TABLE tenants DROP COLUMN ingest_bytes_per_second;
            ALTER TABLE tenants DROP COLUMN read_cost_per_second;
            ALTER TABLE tenants DROP COLUMN max_concurrent_exports;
            ALTER TABLE tenants DROP COLUMN max_daily_export_bytes;
            ALTER TABLE tenants DROP COLUMN export_job_max_bytes;
            DROP TABLE event_schemas;
            DROP TABLE event_types;
            ALTER TABLE tenants DROP COLUMN require_registered_types;
            DROP TABLE policy_proposals;
            DROP TABLE policy_versions;
            ALTER TABLE api_keys DROP COLUMN owner;
            ALTER TABLE tenants DROP COLUMN max_stored_events;
            ALTER TABLE tenants DROP COLUMN max_stored_bytes;
            ALTER TABLE tree_heads DROP COLUMN stored_bytes;
            DROP TABLE data_keys;
            DROP INDEX log_entries_purged;
            ALTER TABLE log_entries DROP COLUMN purged_by;
            DROP TABLE legal_holds;
            DROP TABLE erasure_requests;
            DELETE FROM schema_version WHERE version > 1;
            """);

        _store = Open();

        // Version 9 back-fills each log's stored bytes from the leaves it already holds.
        var leafBytes = (long)Scalar("SELECT SUM(length(leaf)) FROM log_entries")!;
        Assert.Equal(new StorageUsage(7, leafBytes), await Store.GetStorageUsageAsync("acme", CancellationToken.None));
        Assert.Equal(new StorageUsage(0, 0), await Store.GetStorageUsageAsync("empty", CancellationToken.None));
        Assert.True(await Store.UpdateTenantSettingsAsync("acme", new TenantSettings(true, 10, 5), CancellationToken.None));

        Assert.Equal(new TenantSettings(true, 10, 5), (await Store.GetTenantAsync("acme", CancellationToken.None))!.Settings);
        Assert.Equal(13L, Scalar("SELECT MAX(version) FROM schema_version"));
    }

    [Fact]
    public async Task A_lost_read_model_file_is_rebuilt_from_the_logs_at_the_next_start()
    {
        Assert.True(await Store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));
        var drafts = Enumerable.Range(0, 25).Select(i => new Atp.Core.Events.EventDraft(
            null, "acme.audit.v1", DateTimeOffset.UnixEpoch.AddMinutes(i), new Atp.Core.Events.Party("user", $"u-{i % 3}", null), "document.read",
            [new Atp.Core.Events.Party("document", $"d-{i}", null)], Atp.Core.Events.EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new Atp.Core.Ingestion.IngestionService(Store, TimeProvider.System).AppendAsync("acme", drafts, null, CancellationToken.None));
        Assert.Equal(25, await Store.ProjectPendingAsync(1000, CancellationToken.None));
        await Store.DisposeAsync();
        _store = null;
        foreach (var file in Directory.GetFiles(_directory, "atp-read.db*"))
        {
            File.Delete(file);
        }

        _store = Open();
        Assert.NotNull(await Store.OldestUnprojectedAsync(CancellationToken.None));
        Assert.Equal(25, await Store.ProjectPendingAsync(1000, CancellationToken.None));

        Assert.Equal(new Atp.Core.Query.ProjectionStatus(25, 25), await Store.GetProjectionStatusAsync("acme", CancellationToken.None));
        var byActor = await Store.SearchAsync(new Atp.Core.Query.EventQuery("acme") { ActorId = "u-1", Limit = 100 }, CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 25).Where(i => i % 3 == 1).Select(i => (ulong)i).Reverse(), byActor.Hits.Select(h => h.Entry.Index));
        Assert.Null(await Store.OldestUnprojectedAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Read_models_ahead_of_a_restored_log_are_projected_again_from_the_log()
    {
        Assert.True(await Store.TryCreateTenantAsync(new Tenant("acme", "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));
        await AppendAsync(3, "old");
        Assert.Equal(3, await Store.ProjectPendingAsync(1000, CancellationToken.None));
        await Store.DisposeAsync();
        _store = null;
        var backup = Path.Combine(_directory, "backup.db");
        File.Copy(Path.Combine(_directory, "atp.db"), backup);

        _store = Open();
        await AppendAsync(4, "new");
        Assert.Equal(4, await Store.ProjectPendingAsync(1000, CancellationToken.None));
        await Store.DisposeAsync();
        _store = null;
        File.Copy(backup, Path.Combine(_directory, "atp.db"), overwrite: true);

        _store = Open();
        await Store.ProjectPendingAsync(1000, CancellationToken.None);

        Assert.Equal(new Atp.Core.Query.ProjectionStatus(3, 3), await Store.GetProjectionStatusAsync("acme", CancellationToken.None));
        var all = await Store.SearchAsync(new Atp.Core.Query.EventQuery("acme") { Limit = 100 }, CancellationToken.None);
        Assert.Equal([2UL, 1UL, 0UL], all.Hits.Select(h => h.Entry.Index));
        Assert.Empty((await Store.SearchAsync(new Atp.Core.Query.EventQuery("acme") { ActorId = "new", Limit = 100 }, CancellationToken.None)).Hits);
    }

    private async Task AppendAsync(int count, string actor)
    {
        var drafts = Enumerable.Range(0, count).Select(i => new Atp.Core.Events.EventDraft(
            null, "acme.audit.v1", DateTimeOffset.UnixEpoch.AddMinutes(i), new Atp.Core.Events.Party("user", actor, null), "document.read",
            [], Atp.Core.Events.EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new Atp.Core.Ingestion.IngestionService(Store, TimeProvider.System).AppendAsync("acme", drafts, null, CancellationToken.None));
    }

    private SqliteStore Open() =>
        new(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);

    private object? Scalar(string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
