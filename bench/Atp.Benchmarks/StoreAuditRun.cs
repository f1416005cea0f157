using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Atp.Storage.Sqlite;

namespace Atp.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/Atp.Benchmarks -- audit</c>: <c>atp verify store</c>'s audit against raw
/// SHA-256 of the same leaf bytes, all in one run and interleaved (so a busy machine slows every column alike): the
/// best of five rounds per column, per entry, for 100,000-entry stores of 256 B and 800 B leaves.
/// </summary>
internal static class StoreAuditRun
{
    private const int Entries = 100_000;
    private const int Rounds = 5;

    public static void Print(TextWriter output)
    {
        output.WriteLine("| leaf | raw SHA-256, OpenSSL low-level | raw SHA-256, .NET | read rows only | audit, one thread | audit, leaf checks on a 2nd thread (`atp verify store`) | raw ÷ audit (low-level) | raw ÷ audit (.NET) |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var leafBytes in new[] { 256, 800 })
        {
            var directory = Directory.CreateTempSubdirectory("atp-audit-run-").FullName;
            using var signer = NoteSigner.Generate("atp.bench/audit-1");
            try
            {
                var leaves = StoreAuditBenchmarks.CreateStore(directory, Entries, leafBytes, signer);
                var best = new double[5];
                Array.Fill(best, double.MaxValue);
                for (var round = 0; round < Rounds; round++)
                {
                    best[0] = Math.Min(best[0], Time(() => RawLowLevel(leaves)));
                    best[1] = Math.Min(best[1], Time(() => RawFramework(leaves)));
                    best[2] = Math.Min(best[2], Time(() => Audit(directory, signer, scanOnly: true, pipelined: false)));
                    best[3] = Math.Min(best[3], Time(() => Audit(directory, signer, scanOnly: false, pipelined: false)));
                    best[4] = Math.Min(best[4], Time(() => Audit(directory, signer, scanOnly: false, pipelined: true)));
                }

                var perEntry = best.Select(ms => ms * 1e6 / Entries).ToArray();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {leafBytes} B | {Cell(perEntry[0], leafBytes)} | {Cell(perEntry[1], leafBytes)} | {perEntry[2]:F0} ns | {Cell(perEntry[3], leafBytes)} | {Cell(perEntry[4], leafBytes)} | {perEntry[0] / perEntry[4]:F2}× | {perEntry[1] / perEntry[4]:F2}× |"));
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static string Cell(double nanoseconds, int leafBytes) =>
        string.Create(CultureInfo.InvariantCulture, $"{nanoseconds:F0} ns ({leafBytes / nanoseconds * 1e3:F0} MB/s)");

    private static double Time(Action run)
    {
        var stopwatch = Stopwatch.StartNew();
        run();
        return stopwatch.Elapsed.TotalMilliseconds;
    }

    private static void RawLowLevel(byte[][] leaves)
    {
        Span<byte> digest = stackalloc byte[32];
        foreach (var leaf in leaves)
        {
            Sha256Engine.HashRaw(leaf, digest);
        }
    }

    private static void RawFramework(byte[][] leaves)
    {
        Span<byte> digest = stackalloc byte[32];
        foreach (var leaf in leaves)
        {
            SHA256.HashData(leaf, digest);
        }
    }

    private static void Audit(string directory, NoteSigner signer, bool scanOnly, bool pipelined)
    {
        var source = SqliteAuditSource.Open(directory);
        try
        {
            if (pipelined)
            {
                var result = new StoreAuditor(source, [signer.Verifier]).RunAsync(_ => throw new InvalidOperationException("mismatch"), null, CancellationToken.None).GetAwaiter().GetResult();
                if (result.Entries != Entries)
                {
                    throw new InvalidOperationException("the store did not verify");
                }

                return;
            }

            var audit = new TreeAudit("bench", [Entries], _ => throw new InvalidOperationException("mismatch"));
            source.ListTenantsAsync(CancellationToken.None).GetAwaiter().GetResult();
            StoredRowVisitor visit = scanOnly ? (_, _, _, _) => { } : audit.Check;
            source.ScanAsync("bench", 0, Entries, visit, CancellationToken.None).GetAwaiter().GetResult();
        }
        finally
        {
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
