using System.Formats.Tar;
using System.Text;
using Atp.Cli.Admin;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Cli.Tests.Admin;

/// <summary>
/// <c>atp admin backup</c>, <c>restore</c> and <c>accept-rollback</c> on a real embedded store (SQLite files in a fresh
/// directory, checkpoints signed by the cell key kept in its keys directory): a backup taken while appends go on restores
/// to exactly the heads its manifest lists; a damaged archive, a non-empty target and a copy whose checkpoints its keys
/// cannot verify are refused with nothing written.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class BackupRestoreCommandTests
{
    private const string TenantId = "acme";
    private const string Origin = "atp.test/backup-cell-1";

    [Fact]
    public async Task A_backup_taken_while_appends_go_on_restores_to_the_heads_its_manifest_lists()
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        var archive = Path.Combine(root, "cell.tar");
        using var stop = new CancellationTokenSource();
        var appends = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await cell.AppendAsync(5);
                await cell.SealAsync();
            }
        });

        var backup = await CliRun.InProcessAsync("admin", "backup", "--data", data, "--out", archive);
        await stop.CancelAsync();
        await appends;

        Assert.True(backup.ExitCode == ExitCodes.Success, backup.Error);
        Assert.Contains("progress: copying atp.db", backup.Error, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(archive));
        Assert.Empty(Directory.EnumerateFileSystemEntries(root, ".cell.tar*"));
        var manifest = await ReadManifestAsync(archive);
        var head = Assert.Single(manifest.TreeHeads);
        Assert.Equal(TenantId, head.Tenant);
        Assert.True(head.Size >= 20 && head.CheckpointSize >= 20 && head.CheckpointSize <= head.Size);
        Assert.Contains(manifest.Members, m => m.Name == "atp.db");
        Assert.Contains(manifest.Members, m => m.Name == "keys/cell-signing.key");
        Assert.DoesNotContain(manifest.Members, m => m.Name.Contains(PublishedHeads.FileName, StringComparison.Ordinal));

        var target = Path.Combine(root, "restored");
        var restore = await CliRun.InProcessAsync("admin", "restore", "--from", archive, "--data", target);

        Assert.True(restore.ExitCode == ExitCodes.Success, restore.Error);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(target));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(target, "atp.db")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(target, "keys", "cell-signing.key")));
        await using (var restored = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = target }), TimeProvider.System, NullLogger<SqliteStore>.Instance))
        {
            var restoredHead = await restored.GetTreeHeadAsync(TenantId, CancellationToken.None);
            Assert.Equal(head.Size, restoredHead!.Size);
            Assert.Equal(head.Root, restoredHead.Root.ToBase64());
            Assert.Equal(head.CheckpointSize, (await restored.GetLatestCheckpointAsync(TenantId, CancellationToken.None))!.Size);
        }

        var verify = await CliRun.InProcessAsync("verify", "store", "--data", target, "--no-progress");
        Assert.True(verify.ExitCode == ExitCodes.Success, verify.Output + verify.Error);
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    public async Task A_damaged_archive_is_refused_with_nothing_written(string damage)
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        var archive = await BackUpAsync(cell);
        var offset = await DataOffsetAsync(archive, "atp.db");
        var bytes = await File.ReadAllBytesAsync(archive);
        if (damage == "flip")
        {
            // One bit inside atp.db's data: the tar framing stays valid, only the member's SHA-256 tells.
            bytes[offset] ^= 0x01;
        }
        else
        {
            bytes = bytes[..(bytes.Length * 2 / 3)];
        }

        await File.WriteAllBytesAsync(archive, bytes);
        var target = Path.Combine(root, "restored");

        var restore = await CliRun.InProcessAsync("admin", "restore", "--from", archive, "--data", target);

        Assert.Equal(ExitCodes.BadInput, restore.ExitCode);
        Assert.Contains("the archive is damaged or not an ATP backup", restore.Error, StringComparison.Ordinal);
        Assert.Contains("nothing was written", restore.Error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
        Assert.Empty(Directory.EnumerateDirectories(root, ".restored.restore-*"));
    }

    [Fact]
    public async Task A_non_empty_target_is_refused_unless_forced_and_keeps_its_published_head_record()
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        var archive = await BackUpAsync(cell);
        var target = Directory.CreateDirectory(Path.Combine(root, "old-cell")).FullName;
        await File.WriteAllTextAsync(Path.Combine(target, "atp.db-wal"), "stale write-ahead log of another database");
        await File.WriteAllTextAsync(Path.Combine(target, PublishedHeads.FileName), $"head {TenantId} 99 {MerkleHasher.EmptyRoot.ToBase64()}\n");

        var refused = await CliRun.InProcessAsync("admin", "restore", "--from", archive, "--data", target);
        Assert.Equal(ExitCodes.BadInput, refused.ExitCode);
        Assert.Contains("--force", refused.Error, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(target, "atp.db-wal")));
        Assert.False(File.Exists(Path.Combine(target, "atp.db")));

        var forced = await CliRun.InProcessAsync("admin", "restore", "--from", archive, "--data", target, "--force");
        Assert.True(forced.ExitCode == ExitCodes.Success, forced.Error);
        Assert.False(File.Exists(Path.Combine(target, "atp.db-wal")));
        Assert.True(File.Exists(Path.Combine(target, "atp.db")));
        using var record = PublishedHeads.Read(target);
        Assert.Equal(99UL, record.Find(TenantId)!.Size);
    }

    [Fact]
    public async Task A_copy_whose_checkpoint_its_keys_cannot_verify_is_not_written()
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        // The key file no longer holds the key that signed the stored checkpoints.
        using (var other = NoteSigner.Generate(Origin))
        {
            await File.WriteAllTextAsync(Path.Combine(data, "keys", "cell-signing.key"), other.ExportSignerKey() + "\n");
        }

        var archive = Path.Combine(root, "cell.tar");
        var backup = await CliRun.InProcessAsync("admin", "backup", "--data", data, "--out", archive, "--no-progress");

        Assert.Equal(ExitCodes.BadInput, backup.ExitCode);
        Assert.Contains("tenant acme's latest checkpoint", backup.Error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root, "*cell.tar*"));
    }

    [Fact]
    public async Task Backup_refuses_to_overwrite_an_archive()
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        var archive = await BackUpAsync(cell);
        var before = await File.ReadAllBytesAsync(archive);

        var again = await CliRun.InProcessAsync("admin", "backup", "--data", data, "--out", archive, "--no-progress");

        Assert.Equal(ExitCodes.BadInput, again.ExitCode);
        Assert.Equal(before, await File.ReadAllBytesAsync(archive));
    }

    [Fact]
    public async Task Accept_rollback_needs_a_published_head_and_records_the_acceptance()
    {
        await using var cell = await Cell.CreateAsync();
        var (root, data) = (cell.Root, cell.Data);
        var none = await CliRun.InProcessAsync("admin", "accept-rollback", "--data", data, "--tenant", TenantId);
        Assert.Equal(ExitCodes.BadInput, none.ExitCode);

        using (var record = PublishedHeads.Open(data))
        {
            record.Record([(TenantId, new TreeHead(20, MerkleHasher.EmptyRoot))]);
        }

        var unknown = await CliRun.InProcessAsync("admin", "accept-rollback", "--data", data, "--tenant", "globex");
        Assert.Equal(ExitCodes.BadInput, unknown.ExitCode);

        var accepted = await CliRun.InProcessAsync("admin", "accept-rollback", "--data", data, "--tenant", TenantId);
        Assert.True(accepted.ExitCode == ExitCodes.Success, accepted.Error);
        using var reread = PublishedHeads.Read(data);
        Assert.True(reread.IsAccepted(TenantId));
        Assert.False(reread.IsAccepted("globex"));
        Assert.Equal(20UL, reread.Find(TenantId)!.Size);
    }

    private static async Task<string> BackUpAsync(Cell cell)
    {
        var archive = Path.Combine(cell.Root, "cell.tar");
        var backup = await CliRun.InProcessAsync("admin", "backup", "--data", cell.Data, "--out", archive, "--no-progress");
        Assert.True(backup.ExitCode == ExitCodes.Success, backup.Error);
        return archive;
    }

    private static async Task<long> DataOffsetAsync(string archive, string member)
    {
        await using var file = File.OpenRead(archive);
        await using var tar = new TarReader(file);
        while (await tar.GetNextEntryAsync() is { } entry)
        {
            if (entry.Name == member)
            {
                return entry.DataOffset + (entry.Length / 2);
            }
        }

        throw new InvalidOperationException($"no member {member}");
    }

    private static async Task<BackupManifest> ReadManifestAsync(string archive)
    {
        await using var file = File.OpenRead(archive);
        await using var tar = new TarReader(file);
        var entry = await tar.GetNextEntryAsync();
        Assert.Equal(BackupManifest.ManifestName, entry!.Name);
        using var buffer = new MemoryStream();
        await entry.DataStream!.CopyToAsync(buffer);
        return BackupManifest.Parse(buffer.ToArray())!;
    }

    /// <summary>A real embedded store in a fresh directory, its cell signing key in keys/, with 20 sealed entries.</summary>
    private sealed class Cell : IAsyncDisposable
    {
        private readonly NoteSigner _signer = NoteSigner.Generate(Origin);
        private SqliteStore _store = null!;
        private int _next;

        public string Root { get; } = Directory.CreateTempSubdirectory("atp-backup-cli-").FullName;

        public string Data => Path.Combine(Root, "data");

        public static async Task<Cell> CreateAsync()
        {
            var cell = new Cell();
            Directory.CreateDirectory(Path.Combine(cell.Data, "keys"));
            await File.WriteAllTextAsync(Path.Combine(cell.Data, "keys", "cell-signing.key"), cell._signer.ExportSignerKey() + "\n");
            cell._store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = cell.Data }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
            var tenant = new Tenant(TenantId, "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UtcNow);
            Assert.True(await cell._store.TryCreateTenantAsync(tenant, CancellationToken.None));
            await cell.AppendAsync(20);
            await cell.SealAsync();
            return cell;
        }

        public async ValueTask DisposeAsync()
        {
            await _store.DisposeAsync();
            _signer.Dispose();
            Directory.Delete(Root, recursive: true);
        }

        public async Task AppendAsync(int count)
        {
            var entries = new PendingEntry[count];
            for (var i = 0; i < count; i++)
            {
                var id = Guid.CreateVersion7();
                var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes($"{{\"id\":\"{id:D}\",\"action\":\"user.login\",\"seq\":{Interlocked.Increment(ref _next)}}}"));
                entries[i] = new PendingEntry(id, false, leaf, MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UtcNow);
            }

            Assert.IsType<Appended>(await _store.AppendAsync(new AppendRequest(TenantId, entries, null), CancellationToken.None));
        }

        public async Task SealAsync()
        {
            var head = (await _store.GetTreeHeadAsync(TenantId, CancellationToken.None))!;
            var note = new Checkpoint($"{Origin}/{TenantId}", head.Size, head.Root).Sign(_signer).ToString();
            await _store.SaveCheckpointAsync(TenantId, head.Size, note, DateTimeOffset.UtcNow, CancellationToken.None);
        }
    }
}
