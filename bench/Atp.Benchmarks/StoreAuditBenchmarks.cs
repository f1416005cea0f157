using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Benchmarks;

/// <summary>
/// <c>atp verify store</c>'s audit of an embedded store (read every row of atp.db read-only, hash every leaf, re-check
/// every stored node, the head and the checkpoint) against raw SHA-256 of the same leaf bytes already in memory,
/// measured in the same run. Per entry; the store holds <see cref="Entries"/> entries of <see cref="LeafBytes"/> bytes.
/// </summary>
[MemoryDiagnoser]
public class StoreAuditBenchmarks
{
    private const int Entries = 100_000;
    private string _directory = "";
    private byte[][] _leaves = [];
    private NoteSigner? _signer;

    // 800 B is a typical event's leaf (see the load test).
    [Params(256, 800)]
    public int LeafBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("atp-audit-bench-").FullName;
        _signer = NoteSigner.Generate("atp.bench/audit-1");
        _leaves = CreateStore(_directory, Entries, LeafBytes, _signer);
    }

    /// <summary>Writes a store of one tenant ("bench") through <see cref="SqliteStore"/>, sealed once; returns the leaves.</summary>
    internal static byte[][] CreateStore(string directory, int entries, int leafBytes, NoteSigner signer)
    {
        var random = new Random(42);
        var leaves = new byte[entries][];
        var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        try
        {
            store.TryCreateTenantAsync(new Tenant("bench", "bench", Tenant.DefaultEdition, "local", new Residency(Residency.Permitted, []), Tenant.Active, DateTimeOffset.UtcNow), CancellationToken.None)
                .GetAwaiter().GetResult();
            for (var batch = 0; batch < entries / 1000; batch++)
            {
                var pending = new List<PendingEntry>(1000);
                for (var i = batch * 1000; i < (batch + 1) * 1000; i++)
                {
                    // Printable bytes, as JSON leaves are (their content does not matter to the audit).
                    var leaf = new byte[leafBytes];
                    for (var b = 0; b < leaf.Length; b++)
                    {
                        leaf[b] = (byte)random.Next(0x20, 0x7F);
                    }

                    leaves[i] = leaf;
                    pending.Add(new PendingEntry(Guid.NewGuid(), false, leaf, MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UtcNow));
                }

                store.AppendAsync(new AppendRequest("bench", pending, null), CancellationToken.None).GetAwaiter().GetResult();
            }

            ((ILogStore)store).SealAsync("bench", (head, _) => Task.FromResult<string?>(new Checkpoint("atp.bench/audit-1/bench", head.Size, head.Root).Sign(signer).ToString()), DateTimeOffset.UtcNow, CancellationToken.None)
                .GetAwaiter().GetResult();
        }
        finally
        {
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        return leaves;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _signer?.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Entries, Description = "raw SHA-256 of the same leaf bytes, in memory (OpenSSL low-level)")]
    public byte RawSha256()
    {
        Span<byte> digest = stackalloc byte[32];
        byte acc = 0;
        foreach (var leaf in _leaves)
        {
            Sha256Engine.HashRaw(leaf, digest);
            acc ^= digest[0];
        }

        return acc;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "raw SHA-256 of the same leaf bytes, in memory (.NET SHA256.HashData)")]
    public byte RawSha256Framework()
    {
        Span<byte> digest = stackalloc byte[32];
        byte acc = 0;
        foreach (var leaf in _leaves)
        {
            System.Security.Cryptography.SHA256.HashData(leaf, digest);
            acc ^= digest[0];
        }

        return acc;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "verify store: read atp.db, leaf hashes, nodes, head, checkpoint")]
    public long VerifyStore()
    {
        var source = SqliteAuditSource.Open(_directory);
        try
        {
            var result = new StoreAuditor(source, [_signer!.Verifier]).RunAsync(_ => { }, null, CancellationToken.None).GetAwaiter().GetResult();
            if (!result.IsClean || result.Entries != Entries)
            {
                throw new InvalidOperationException("the benchmark store did not verify");
            }

            return result.LeafBytes;
        }
        finally
        {
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
