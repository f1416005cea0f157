using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Core.Tenants;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>
/// The store audit over a log of several scan ranges (<see cref="StoreAuditor.ChunkEntries"/>), which it reads on
/// several threads and folds in index order: the same findings, in the same order, as one thread walking the rows
/// with <see cref="TreeAudit"/>, including a node whose subtree spans two ranges.
/// </summary>
public sealed class SqliteStoreAuditTests : IAsyncLifetime
{
    private const string Origin = "atp.test/audit-ranges";
    private const ulong Chunk = StoreAuditor.ChunkEntries;

    // Two and a half ranges and a few more: the last range is partial.
    private static readonly ulong Size = (2 * Chunk) + (Chunk / 2) + 7;

    private readonly string _directory = Directory.CreateTempSubdirectory("atp-audit-ranges-").FullName;
    private readonly NoteSigner _signer = NoteSigner.Generate(Origin);

    public async Task InitializeAsync()
    {
        var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        await using (store)
        {
            Assert.True(await store.TryCreateTenantAsync(
                new Tenant("acme", "acme", Tenant.DefaultEdition, "local", new Residency(Residency.Permitted, []), Tenant.Active, DateTimeOffset.UnixEpoch), CancellationToken.None));
            ulong appended = 0;
            while (appended < Size)
            {
                var count = (int)Math.Min(1000, Size - appended);
                var entries = Enumerable.Range(0, count).Select(i =>
                {
                    var leaf = System.Text.Encoding.UTF8.GetBytes($"{{\"index\":{appended + (ulong)i},\"pad\":\"{new string('x', 200)}\"}}");
                    return new PendingEntry(Guid.NewGuid(), false, leaf, MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UnixEpoch);
                }).ToList();
                Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", entries, null), CancellationToken.None));
                appended += (ulong)count;

                // Checkpoints inside the second range and at the end: their roots are taken across range boundaries.
                if ((appended > Chunk && appended - (ulong)count <= Chunk) || appended == Size)
                {
                    Assert.True(await ((ILogStore)store).SealAsync(
                        "acme", (head, _) => Task.FromResult<string?>(new Checkpoint($"{Origin}/acme", head.Size, head.Root).Sign(_signer).ToString()), DateTimeOffset.UnixEpoch, CancellationToken.None));
                }
            }
        }
    }

    public Task DisposeAsync()
    {
        _signer.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_clean_log_of_several_ranges_verifies_with_progress_up_to_its_size()
    {
        var progress = new List<AuditProgress>();
        var result = await AuditAsync(new SynchronousProgress(progress.Add));

        Assert.True(result.Findings.Count == 0, string.Join("\n", result.Findings));
        Assert.Equal(Size, result.Result.Entries);
        Assert.Equal(2, result.Result.Checkpoints);
        Assert.True(progress.Count > 3, $"{progress.Count} progress reports");
        Assert.Equal(progress.Select(p => p.EntriesChecked).Order(), progress.Select(p => p.EntriesChecked));
        Assert.Equal(Size, progress[^1].EntriesChecked);
        Assert.All(progress, p => Assert.Equal(Size, p.EntriesTotal));
    }

    [Fact]
    public async Task Mismatches_in_several_ranges_are_reported_once_each_in_index_order_as_by_one_thread()
    {
        // A leaf in the second range; the node over the first two ranges (subtree [0, 2·Chunk), level log2(Chunk) + 1),
        // stored in the row of the second range's last leaf; a leaf in the last range.
        Assert.True(ulong.IsPow2(Chunk), "the node below is found by a power-of-two range size");
        var leaf1 = Chunk + 5;
        var leaf2 = (2 * Chunk) + 3;
        var level = System.Numerics.BitOperations.Log2(Chunk) + 1;
        var nodeRow = (2 * Chunk) - 1;
        FlipByte("leaf", leaf1, 10);
        FlipByte("nodes", nodeRow, ((level - 1) * Hash.Size) + 3);
        FlipByte("leaf", leaf2, 0);

        var (result, findings) = await AuditAsync(null);

        Assert.Equal(
            new[] { (AuditFindingKind.Leaf, leaf1), (AuditFindingKind.Node, nodeRow), (AuditFindingKind.Leaf, leaf2) },
            findings.Select(f => (f.Kind, f.Index)));
        Assert.Contains($"level {level}, index 0)", findings[1].Detail, StringComparison.Ordinal);
        Assert.Equal(3, result.Findings);
        Assert.Equal(Size, result.Entries);

        // One thread, row by row, finds exactly the same.
        var reference = new List<AuditFinding>();
        var source = SqliteAuditSource.Open(_directory);
        await using (source)
        {
            await source.ListTenantsAsync(CancellationToken.None);
            var audit = new TreeAudit("acme", [Size], reference.Add);
            await source.ScanAsync("acme", 0, Size, audit.Check, CancellationToken.None);
        }

        Assert.Equal(reference, findings);
    }

    [Fact]
    public async Task Rows_are_read_through_the_very_SQLite_library_that_SQLitePCL_loaded()
    {
        var source = SqliteAuditSource.Open(_directory);
        await using (source)
        {
            await source.ListTenantsAsync(CancellationToken.None);

            // Else the scan falls back to SQLitePCL's accessors: same rows, several times the cost per row.
            Assert.True(SqliteAuditNative.IsAvailable);
        }
    }

    [Fact]
    public async Task A_cancelled_audit_stops_with_the_cancellation_instead_of_hanging()
    {
        FlipByte("leaf", 3, 0);
        using var cancel = new CancellationTokenSource();
        var source = SqliteAuditSource.Open(_directory);
        await using (source)
        {
            var run = new StoreAuditor(source, [_signer.Verifier]).RunAsync(_ => cancel.Cancel(), null, cancel.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        }
    }

    [Fact]
    public async Task A_purged_entry_passes_the_leaf_check_and_an_emptied_leaf_not_marked_purged_fails_it()
    {
        // Retention leaves an empty leaf marked with its purge record; tampering that empties a leaf without the mark
        // must still be found.
        Execute(5, "leaf = X'', purged_by = 40");
        Execute(7, "leaf = X''");

        var (result, findings) = await AuditAsync(null);

        var finding = Assert.Single(findings);
        Assert.Equal((AuditFindingKind.Leaf, 7UL), (finding.Kind, finding.Index));
        Assert.Equal(Size, result.Entries);
    }

    private void Execute(ulong index, string assignments)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT num FROM tenants WHERE id = 'acme'";
        var rowId = LogRowId.Of((long)command.ExecuteScalar()!, index);
        command.CommandText = $"UPDATE log_entries SET {assignments} WHERE id = {rowId}";
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private async Task<(StoreAuditResult Result, List<AuditFinding> Findings)> AuditAsync(IProgress<AuditProgress>? progress)
    {
        var findings = new List<AuditFinding>();
        var source = SqliteAuditSource.Open(_directory);
        await using (source)
        {
            var result = await new StoreAuditor(source, [_signer.Verifier]).RunAsync(findings.Add, progress, CancellationToken.None);
            return (result, findings);
        }
    }

    private void FlipByte(string column, ulong index, int offset)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
        connection.Open();
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT num FROM tenants WHERE id = 'acme'";
        var rowId = LogRowId.Of((long)read.ExecuteScalar()!, index);
        read.CommandText = $"SELECT {column} FROM log_entries WHERE id = {rowId}";
        var bytes = (byte[])read.ExecuteScalar()!;
        bytes[offset] ^= 0x01;
        using var write = connection.CreateCommand();
        write.CommandText = $"UPDATE log_entries SET {column} = $v WHERE id = {rowId}";
        write.Parameters.AddWithValue("$v", bytes);
        Assert.Equal(1, write.ExecuteNonQuery());
    }

    // Progress<T> would post to the thread pool; the audit's own order is what is under test.
    private sealed class SynchronousProgress(Action<AuditProgress> report) : IProgress<AuditProgress>
    {
        public void Report(AuditProgress value) => report(value);
    }
}
