using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.QueryBench;

/// <summary>What a completed <c>generate</c> run leaves in the data directory; its presence marks the data set complete.</summary>
internal sealed record Manifest(long Events, int Seed, DateTimeOffset End, double AppendPerSecond, double ProjectPerSecond, long DatabaseBytes, DateTimeOffset GeneratedAt)
{
    public const string FileName = "querybench.json";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Manifest? Read(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path)) : null;
    }

    public void Write(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Indented));
}

/// <summary>Helpers shared by the runs: opening a store, percentiles, machine load, file sizes, formatting.</summary>
internal static class BenchSupport
{
    public static SqliteStore OpenStore(string directory) =>
        new(Options.Create(new SqliteStoreOptions { DataDirectory = directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);

    public static string DatabasePath(string directory) => Path.Combine(Path.GetFullPath(directory), "atp.db");

    /// <summary>The read models' database file.</summary>
    public static string ReadModelPath(string directory) => Path.Combine(Path.GetFullPath(directory), "atp-read.db");

    /// <summary>Both database files (log and read models) with their WAL and shared-memory files.</summary>
    public static long DatabaseBytes(string directory) =>
        new[] { DatabasePath(directory), ReadModelPath(directory) }
            .SelectMany(file => new[] { "", "-wal", "-shm" }.Select(suffix => new FileInfo(file + suffix)))
            .Where(f => f.Exists)
            .Sum(f => f.Length);

    /// <summary>Nearest-rank percentile of unsorted values (0 … 100; 100 is the maximum).</summary>
    public static double Percentile(IReadOnlyList<double> values, double percent)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(percent / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static string Machine() =>
        $"{Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}";

    /// <summary>The 1-minute load average (Linux), or null.</summary>
    public static double? LoadAverage()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// How much of a file the OS page cache holds (util-linux <c>fincore</c>), e.g. "3.1 of 9.8 GB"; null when unknown.
    /// </summary>
    public static string? CachedShare(string path)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("fincore", ["--bytes", "--noheadings", "--output", "RES,SIZE", path]) { RedirectStandardOutput = true, RedirectStandardError = true });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            process.WaitForExit();
            return process.ExitCode == 0 && output.Length == 2
                ? $"{Gb(long.Parse(output[0], CultureInfo.InvariantCulture))} of {Gb(long.Parse(output[1], CultureInfo.InvariantCulture))} GB in the page cache"
                : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or FormatException)
        {
            return null;
        }
    }

    public static string Gb(long bytes) => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture);

    public static string Ms(double value) => double.IsNaN(value) ? "—" : value.ToString(value < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture);

    public static string N0(double value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string CommandLine(string[] args) =>
        "dotnet run -c Release --project bench/Atp.QueryBench -- " + string.Join(' ', args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));
}

/// <summary>CPU use over a window: this process and the whole machine (Linux /proc/stat), in cores.</summary>
internal sealed class CpuWindow
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TimeSpan _process = Environment.CpuUsage.TotalTime;
    private readonly TimeSpan? _machine = MachineBusy();

    public string Describe()
    {
        var seconds = _clock.Elapsed.TotalSeconds;
        var process = (Environment.CpuUsage.TotalTime - _process).TotalSeconds / seconds;
        var text = $"this process {process:0.00} cores";
        if (_machine is { } before && MachineBusy() is { } after)
        {
            var machine = (after - before).TotalSeconds / seconds;
            text += $", whole machine {machine:0.00} of {Environment.ProcessorCount} (others {Math.Max(0, machine - process):0.00})";
        }

        return text + (BenchSupport.LoadAverage() is { } load ? $", load average {load:0.0}" : "");
    }

    // All but idle and iowait, in USER_HZ (100) ticks.
    private static TimeSpan? MachineBusy()
    {
        try
        {
            var line = File.ReadLines("/proc/stat").First();
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
            return TimeSpan.FromSeconds((f[0] + f[1] + f[2] + f[5] + f[6] + (f.Length > 7 ? f[7] : 0)) / 100.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
