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
/// best of seven rounds per column, per entry, for 100,000-entry stores of 256 B and 800 B leaves. Besides the wall
/// time it gives the process's CPU time per entry for the raw hash and the audit: on a machine shared with other work
/// the wall times depend on how many cores the scheduler grants, the CPU times much less.
/// </summary>
internal static class StoreAuditRun
{
    private const int Entries = 100_000;
    private const int Rounds = 7;

    public static void Print(TextWriter output)
    {
        var threads = StoreAuditor.DefaultScanners;
        output.WriteLine($"| leaf | raw SHA-256, OpenSSL low-level | raw SHA-256, .NET | read rows only | audit, one thread | audit, {threads} threads (`atp verify store`) | raw ÷ audit (low-level) | raw ÷ audit (.NET) | CPU per entry: raw low-level / read rows only / audit, one thread / audit, {threads} threads |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var leafBytes in new[] { 256, 800 })
        {
            var directory = Directory.CreateTempSubdirectory("atp-audit-run-").FullName;
            using var signer = NoteSigner.Generate("atp.bench/audit-1");
            try
            {
                var leaves = StoreAuditBenchmarks.CreateStore(directory, Entries, leafBytes, signer);
                var wall = new double[5];
                var cpu = new double[5];
                Array.Fill(wall, double.MaxValue);
                Array.Fill(cpu, double.MaxValue);
                for (var round = 0; round < Rounds; round++)
                {
                    Time(0, () => RawLowLevel(leaves), wall, cpu);
                    Time(1, () => RawFramework(leaves), wall, cpu);
                    Time(2, () => ReadOnly(directory), wall, cpu);
                    Time(3, () => Audit(directory, signer, 1), wall, cpu);
                    Time(4, () => Audit(directory, signer, threads), wall, cpu);
                }

                var perEntry = wall.Select(ms => ms * 1e6 / Entries).ToArray();
                var cpuPerEntry = cpu.Select(ms => ms * 1e6 / Entries).ToArray();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {leafBytes} B | {Cell(perEntry[0], leafBytes)} | {Cell(perEntry[1], leafBytes)} | {perEntry[2]:N0} ns | {Cell(perEntry[3], leafBytes)} | {Cell(perEntry[4], leafBytes)} | {perEntry[0] / perEntry[4]:F2}× | {perEntry[1] / perEntry[4]:F2}× | {cpuPerEntry[0]:N0} / {cpuPerEntry[2]:N0} / {cpuPerEntry[3]:N0} / {cpuPerEntry[4]:N0} ns |"));
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static string Cell(double nanoseconds, int leafBytes) =>
        string.Create(CultureInfo.InvariantCulture, $"{nanoseconds:N0} ns ({leafBytes / nanoseconds * 1e3:F0} MB/s)");

    // Best wall time and best CPU time of the column, each over the rounds.
    private static void Time(int column, Action run, double[] wall, double[] cpu)
    {
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        run();
        wall[column] = Math.Min(wall[column], stopwatch.Elapsed.TotalMilliseconds);
        cpu[column] = Math.Min(cpu[column], (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds);
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

    private static void ReadOnly(string directory)
    {
        var source = SqliteAuditSource.Open(directory);
        try
        {
            source.ListTenantsAsync(CancellationToken.None).GetAwaiter().GetResult();
            source.ScanAsync("bench", 0, Entries, (_, _, _, _) => { }, CancellationToken.None).GetAwaiter().GetResult();
        }
        finally
        {
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static void Audit(string directory, NoteSigner signer, int threads)
    {
        var source = SqliteAuditSource.Open(directory);
        try
        {
            var auditor = new StoreAuditor(source, [signer.Verifier]) { Scanners = threads };
            var result = auditor.RunAsync(_ => throw new InvalidOperationException("mismatch"), null, CancellationToken.None).GetAwaiter().GetResult();
            if (result.Entries != Entries)
            {
                throw new InvalidOperationException("the store did not verify");
            }
        }
        finally
        {
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
