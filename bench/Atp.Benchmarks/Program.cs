using Atp.Benchmarks;
using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "reads")
{
    NodeReads.Print(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "audit")
{
    StoreAuditRun.Print(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "bundle")
{
    BundleVerifyRun.Print(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "sealer")
{
    await SealerRun.PrintAsync(Console.Out, args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "schemas")
{
    SchemaValidationBenchmarks.Print(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "fieldenc")
{
    FieldSealingBenchmarks.Print(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "fieldopen")
{
    FieldOpeningBenchmarks.Print(Console.Out);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(AppendBenchmarks).Assembly).Run(args);
