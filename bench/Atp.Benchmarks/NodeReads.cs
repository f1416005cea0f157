using Atp.Integrity;

namespace Atp.Benchmarks;

/// <summary>Node reads per proof (the storage cost a proof adds), averaged over random positions; `dotnet run -- reads`.</summary>
internal static class NodeReads
{
    public static void Print(TextWriter output)
    {
        var random = new Random(7);
        output.WriteLine("| tree size | inclusion reads/op (avg, max) | consistency reads/op (avg, max) |");
        output.WriteLine("|---|---|---|");
        foreach (var size in new ulong[] { 1_000_000, 100_000_000, 1_000_000_000 })
        {
            long inclusionSum = 0, consistencySum = 0;
            int inclusionMax = 0, consistencyMax = 0;
            const int samples = 100_000;
            for (var i = 0; i < samples; i++)
            {
                var index = (ulong)random.NextInt64(1, (long)size);
                var inclusion = ProofBuilder.InclusionReads(index, size);
                var consistency = ProofBuilder.ConsistencyReads(index, size);
                inclusionSum += inclusion;
                consistencySum += consistency;
                inclusionMax = Math.Max(inclusionMax, inclusion);
                consistencyMax = Math.Max(consistencyMax, consistency);
            }

            output.WriteLine($"| {size:N0} | {(double)inclusionSum / samples:F1}, {inclusionMax} | {(double)consistencySum / samples:F1}, {consistencyMax} |");
        }
    }
}
