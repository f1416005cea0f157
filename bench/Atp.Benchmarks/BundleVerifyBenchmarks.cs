using System.Diagnostics;
using System.Globalization;
using Atp.Core.Export;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Benchmarks;

/// <summary>
/// <c>atp verify bundle</c>'s verifier (tar framing, manifest signature, checkpoint, per-file SHA-256, every leaf hash and
/// the root) over a bundle in memory, against raw SHA-256 of the same bundle bytes (OpenSSL low-level, one pass),
/// measured in the same run. Per bundle of <see cref="Entries"/> entries of <see cref="LeafBytes"/> bytes.
/// </summary>
[MemoryDiagnoser]
public class BundleVerifyBenchmarks
{
    internal const int Entries = 100_000;
    private byte[] _bundle = [];
    private NoteVerifier? _key;

    // 800 B is a typical event's leaf (see the load test).
    [Params(256, 800)]
    public int LeafBytes { get; set; }

    [GlobalSetup]
    public void Setup() => (_bundle, _key) = CreateBundle(Entries, LeafBytes);

    /// <summary>A complete bundle of a one-tenant store written through the real store and writer, as bytes.</summary>
    internal static (byte[] Bundle, NoteVerifier Key) CreateBundle(int entries, int leafBytes)
    {
        var directory = Directory.CreateTempSubdirectory("atp-bundle-bench-").FullName;
        using var signer = NoteSigner.Generate("atp.bench/audit-1");
        try
        {
            StoreAuditBenchmarks.CreateStore(directory, entries, leafBytes, signer);
            var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
            try
            {
                var writer = new BundleWriter(store, TimeProvider.System);
                var plan = writer.PlanCompleteAsync("bench", 0, null, null, null, CancellationToken.None).GetAwaiter().GetResult()!;
                var path = Path.Combine(directory, "bench.tar");
                writer.WriteAsync(plan, Directory.CreateDirectory(Path.Combine(directory, "staging")).FullName, signer, path, CancellationToken.None).GetAwaiter().GetResult();
                return (File.ReadAllBytes(path), NoteVerifier.Parse(signer.Verifier.VerifierKey));
            }
            finally
            {
                store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Benchmark(Baseline = true, Description = "raw SHA-256 of the bundle bytes, in memory (OpenSSL low-level)")]
    public byte RawSha256() => RawSha256(_bundle);

    [Benchmark(Description = "verify bundle, in memory (framing, signatures, file SHA-256 on a 2nd thread, leaf hashes, root)")]
    public bool VerifyBundle() => Verify(_bundle, _key!);

    internal static byte RawSha256(byte[] bundle)
    {
        Span<byte> digest = stackalloc byte[32];
        Sha256Engine.HashRaw(bundle, digest);
        return digest[0];
    }

    internal static bool Verify(byte[] bundle, NoteVerifier key)
    {
        using var stream = new MemoryStream(bundle, writable: false);
        var result = new BundleVerifier([key]).VerifyAsync(stream, null, null, CancellationToken.None).GetAwaiter().GetResult();
        return result.IsValid ? true : throw new InvalidOperationException(result.Failure!.ToString());
    }
}

/// <summary>
/// <c>dotnet run -c Release --project bench/Atp.Benchmarks -- bundle</c>: the bundle verifier against raw SHA-256 of the
/// same bytes, interleaved in one run, best of ten rounds (wall time and the process's CPU time), for 100,000-entry bundles.
/// </summary>
internal static class BundleVerifyRun
{
    private const int Rounds = 10;

    public static void Print(TextWriter output)
    {
        output.WriteLine("| leaf | bundle | raw SHA-256 (OpenSSL low-level) | verify bundle | verify ÷ raw throughput | CPU time: raw, verify (all threads) |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var leafBytes in new[] { 256, 800 })
        {
            var (bundle, key) = BundleVerifyBenchmarks.CreateBundle(BundleVerifyBenchmarks.Entries, leafBytes);
            double raw = double.MaxValue, verify = double.MaxValue, rawCpu = double.MaxValue, verifyCpu = double.MaxValue;
            for (var round = 0; round < Rounds; round++)
            {
                var (wall, cpu) = Time(() => BundleVerifyBenchmarks.RawSha256(bundle));
                (raw, rawCpu) = (Math.Min(raw, wall), Math.Min(rawCpu, cpu));
                (wall, cpu) = Time(() => BundleVerifyBenchmarks.Verify(bundle, key));
                (verify, verifyCpu) = (Math.Min(verify, wall), Math.Min(verifyCpu, cpu));
            }

            var megabytes = bundle.Length / 1e6;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {leafBytes} B | {megabytes:F1} MB | {raw * 1e3:F1} ms ({megabytes / raw:F0} MB/s) | {verify * 1e3:F1} ms ({megabytes / verify:F0} MB/s) | {raw / verify:F2}× | {rawCpu * 1e3:F0} ms, {verifyCpu * 1e3:F0} ms |"));
        }
    }

    // Wall time, and the process's CPU time over all threads: on a loaded machine the wall ratio mostly measures how
    // many cores the scheduler lent the run, the CPU time what the work costs (coarse: the kernel counts in ticks).
    private static (double Wall, double Cpu) Time(Action action)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        action();
        var wall = stopwatch.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu).TotalSeconds);
    }
}
