using System.Text;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Core.Tests.Export;

/// <summary>
/// A tenant log in a real embedded store (a SQLite file in a fresh directory) with leaves shaped like ingested ones and
/// checkpoints signed by a cell key, for the bundle writer and verifier tests.
/// </summary>
internal sealed class BundleLog : IAsyncDisposable
{
    public const string TenantId = "acme";
    public const string Origin = "atp.test/local";
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-bundle-").FullName;
    private int _next;

    private BundleLog(ManualClock clock)
    {
        Clock = clock;
        Store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = Path.Combine(_directory, "data") }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        Signer = NoteSigner.Generate(Origin);
    }

    public ManualClock Clock { get; }

    public SqliteStore Store { get; }

    public NoteSigner Signer { get; }

    /// <summary>A scratch directory removed with the log.</summary>
    public string Scratch(string name) => Directory.CreateDirectory(Path.Combine(_directory, name)).FullName;

    public static async Task<BundleLog> CreateAsync()
    {
        var log = new BundleLog(new ManualClock(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero)));
        var tenant = new Tenant(TenantId, "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, log.Clock.GetUtcNow());
        Assert.True(await log.Store.TryCreateTenantAsync(tenant, CancellationToken.None));
        return log;
    }

    /// <summary>Appends <paramref name="count"/> entries (in requests of at most 1,000, as ingestion would).</summary>
    public async Task AppendAsync(int count)
    {
        while (count > 0)
        {
            var batch = Math.Min(count, 1000);
            var entries = new PendingEntry[batch];
            for (var i = 0; i < batch; i++)
            {
                var id = Guid.CreateVersion7(Clock.GetUtcNow());
                var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(
                    $"{{\"id\":\"{id:D}\",\"action\":\"user.login\",\"seq\":{_next++},\"receivedAt\":\"{Clock.GetUtcNow():O}\"}}"));
                entries[i] = new PendingEntry(id, false, leaf, MerkleHasher.HashLeaf(leaf), null, Clock.GetUtcNow());
            }

            Assert.IsType<Appended>(await Store.AppendAsync(new AppendRequest(TenantId, entries, null), CancellationToken.None));
            count -= batch;
        }
    }

    /// <summary>Signs and stores a checkpoint of the current head, as the sealer would; returns its size.</summary>
    public async Task<ulong> SealAsync()
    {
        var head = await Store.GetTreeHeadAsync(TenantId, CancellationToken.None) ?? throw new InvalidOperationException("no head");
        var note = new Checkpoint($"{Origin}/{TenantId}", head.Size, head.Root).Sign(Signer).ToString();
        await Store.SaveCheckpointAsync(TenantId, head.Size, note, Clock.GetUtcNow(), CancellationToken.None);
        return head.Size;
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        Signer.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
