namespace Atp.Benchmarks;

/// <summary>
/// Process CPU time and allocation per event of an ingest path without and with one extra step, the two interleaved in
/// one process: on a busy machine process CPU time is steadier than BenchmarkDotNet's wall-clock iterations.
/// </summary>
internal static class InterleavedCpu
{
    private const int Batches = 400;
    private const int Rounds = 6;

    /// <summary>Runs <paramref name="ingestBatch"/> (its argument: with the step) in alternating rounds; round 0 warms up.</summary>
    public static (double PlainMicros, double WithMicros, double PlainBytes, double WithBytes) Measure(Action<bool> ingestBatch, int eventsPerBatch)
    {
        var totals = new double[2];
        var allocated = new long[2];
        for (var round = 0; round < Rounds; round++)
        {
            for (var path = 0; path < 2; path++)
            {
                var process = System.Diagnostics.Process.GetCurrentProcess();
                var before = process.TotalProcessorTime;
                var bytes = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < Batches; i++)
                {
                    ingestBatch(path == 1);
                }

                process.Refresh();
                if (round > 0)
                {
                    // Round 0 warms up (tiered compilation).
                    totals[path] += (process.TotalProcessorTime - before).TotalMicroseconds;
                    allocated[path] += GC.GetAllocatedBytesForCurrentThread() - bytes;
                }
            }
        }

        var events = (double)(Rounds - 1) * Batches * eventsPerBatch;
        return (totals[0] / events, totals[1] / events, allocated[0] / events, allocated[1] / events);
    }
}
