using System.Text;
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

/// <summary>
/// The read-model sweep's check of the embedded engine (<see cref="SqliteStore.VerifyProjectedRowsAsync"/>): intact read
/// models pass, every entry is walked; a same-length byte flip that only makes a search miss a row (a target, a word of
/// the full-text index) is found and starts a rebuild. Real files, edited while the store is closed.
/// </summary>
public sealed class ReadModelSweepTests : IAsyncLifetime
{
    private const string TenantId = "acme";
    private const int Count = 60;
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-rmsweep-").FullName;
    private SqliteStore? _store;

    private SqliteStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    public async Task InitializeAsync()
    {
        _store = Open();
        Assert.True(await Store.TryCreateTenantAsync(new Tenant(TenantId, "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));

        // Names with diacritics and punctuation (words of the full-text index), several targets, one repeated, and
        // one entry that cannot be indexed (a dead letter).
        var drafts = Enumerable.Range(0, Count).Select(i => new EventDraft(
            null, "acme.audit.v1", DateTimeOffset.UnixEpoch.AddMinutes(i), new Party("user", $"u-{i % 4}", i == 5 ? "Zanzibar Müller" : $"Ana-{i % 7} O'Brien"), i % 2 == 0 ? "document.read" : "document.share",
            [new Party("document", $"doc-unique-{i}", "Report — Q3"), new Party("folder", "shared", null), new Party("folder", "shared", null)], EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(Store, TimeProvider.System).AppendAsync(TenantId, drafts, null, CancellationToken.None));
        Assert.IsType<Appended>(await Store.AppendAsync(new AppendRequest(TenantId, [TestEntries.Create("not an event", DateTimeOffset.UnixEpoch)], null), CancellationToken.None));
        await Store.ProjectPendingAsync(1000, CancellationToken.None);
        Assert.Single(await Store.ListDeadLettersAsync(TenantId, 10, CancellationToken.None));
    }

    public async Task DisposeAsync()
    {
        if (_store is { } store)
        {
            _store = null;
            await store.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Intact_read_models_pass_and_every_projected_entry_is_compared()
    {
        Assert.Equal([TenantId], await Store.ListProjectedTenantsAsync(CancellationToken.None));
        var (compared, damaged) = await SweepAsync(step: 7);

        Assert.False(damaged);
        Assert.Equal(Count + 1, compared);
        Assert.False(Store.IsRebuilding);
    }

    [Theory]
    [InlineData("doc-unique-17", "a target id (event_targets and its type index)")]
    [InlineData("zanzibar", "a word of the full-text index event_text")]
    public async Task A_same_length_flip_that_makes_a_search_miss_a_row_is_found_and_starts_a_rebuild(string needle, string where)
    {
        Assert.False((await SweepAsync(step: 10)).Damaged);
        await Store.DisposeAsync();
        _store = null;
        SqliteConnection.ClearAllPools();
        var path = Path.Combine(_directory, "atp-read.db");
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;";
            command.ExecuteNonQuery();
        }

        var bytes = File.ReadAllBytes(path);
        var pattern = Encoding.UTF8.GetBytes(needle);
        var flips = 0;
        for (var i = bytes.AsSpan().IndexOf(pattern); i >= 0; i = bytes.AsSpan().IndexOf(pattern))
        {
            bytes[i + pattern.Length - 1] ^= 0x01;
            flips++;
        }

        Assert.True(flips >= 1, $"{where}: '{needle}' is not in the file");
        File.WriteAllBytes(path, bytes);
        _store = Open();
        Assert.False(Store.IsRebuilding);

        var (_, damaged) = await SweepAsync(step: 10);

        Assert.True(damaged, where);
        Assert.True(Store.IsRebuilding);
        await Assert.ThrowsAsync<ProjectionRebuildingException>(() => Store.SearchAsync(new EventQuery(TenantId) { Limit = 10 }, CancellationToken.None));

        // The projector moves the file aside and projects the log again; then the search finds the row again.
        for (var turn = 0; turn < 10 && Store.IsRebuilding; turn++)
        {
            await Store.ProjectPendingAsync(1000, CancellationToken.None);
        }

        Assert.False(Store.IsRebuilding);
        Assert.NotEmpty(Directory.GetFiles(_directory, "atp-read.db.damaged-*"));
        var query = needle.StartsWith("doc-", StringComparison.Ordinal) ? new EventQuery(TenantId) { TargetId = needle, Limit = 10 } : new EventQuery(TenantId) { Text = needle, Limit = 10 };
        Assert.Equal(needle.StartsWith("doc-", StringComparison.Ordinal) ? 17UL : 5UL, Assert.Single((await Store.SearchAsync(query, CancellationToken.None)).Hits).Entry.Index);
        Assert.False((await SweepAsync(step: 10)).Damaged);
    }

    // One pass over every projected tenant, as the server's sweep walks it.
    private async Task<(int Compared, bool Damaged)> SweepAsync(int step)
    {
        var compared = 0;
        foreach (var tenant in await Store.ListProjectedTenantsAsync(CancellationToken.None))
        {
            ulong position = 0;
            while (true)
            {
                var result = await Store.VerifyProjectedRowsAsync(tenant, position, step, CancellationToken.None);
                compared += result.Checked;
                if (result.Damaged)
                {
                    return (compared, true);
                }

                if (result.Done)
                {
                    break;
                }

                Assert.True(result.NextIndex > position);
                position = result.NextIndex;
            }
        }

        return (compared, false);
    }

    private SqliteStore Open() =>
        new(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
}
