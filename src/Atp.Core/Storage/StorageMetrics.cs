using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Atp.Core.Storage;

/// <summary>
/// The storage engines' group-commit instruments (meter <c>Atp.Storage</c>): how many append requests each durable
/// commit carried and how long it took from its first write to its durable COMMIT (the WAL flush included). The
/// engines record them; the server exports every <c>Atp.*</c> meter.
/// </summary>
public static class StorageMetrics
{
    public const string MeterName = "Atp.Storage";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<int> Requests = Meter.CreateHistogram(
        "atp.storage.group_commit.requests",
        "{request}",
        "Append requests made durable together by one group commit",
        tags: null,
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });

    private static readonly Histogram<double> Duration = Meter.CreateHistogram(
        "atp.storage.group_commit.duration",
        "s",
        "Time from a group commit's first write to its durable COMMIT (the WAL flush / fsync included)",
        tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1] });

    /// <summary>Records one durable group commit of <paramref name="requests"/> requests that began at <paramref name="startedAt"/> (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public static void GroupCommitted(string engine, int requests, long startedAt)
    {
        var tag = new KeyValuePair<string, object?>("atp.engine", engine);
        Requests.Record(requests, tag);
        Duration.Record(Stopwatch.GetElapsedTime(startedAt).TotalSeconds, tag);
    }
}
