using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Atp.LoadTest;

/// <summary>One run: set-up, ATP load, baseline, report, clean-up.</summary>
internal static class LoadTestRun
{
    private const int SpreadPools = 16;

    public static async Task<int> RunAsync(LoadTestSettings settings, string[] args, CancellationToken cancellationToken)
    {
        var commandLine = CommandLine(args);
        var warmup = TimeSpan.FromSeconds(settings.WarmupSeconds);
        var duration = TimeSpan.FromSeconds(settings.DurationSeconds);
        var progress = TimeSpan.FromSeconds(settings.ProgressSeconds);

        Console.WriteLine($"ATP load test: {commandLine}");
        Console.WriteLine($"  {Describe(settings)}");
        Console.WriteLine($"  machine: {Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");

        var generation = Stopwatch.StartNew();
        // Spread over many tenants, the tenants share a few pools of bodies: generating one pool per tenant would take
        // the generator minutes and gigabytes for 10,000 tenants.
        var workload = Workload.Create(settings.Spread ? Math.Min(settings.Tenants, SpreadPools) : settings.Tenants, settings.Batch, settings.EventBytes);
        Console.WriteLine($"  workload: {workload.Tenants[0].Bodies.Length} distinct bodies per tenant, body ≈ {workload.AverageBodyBytes:N0} B (max {workload.MaxBodyBytes:N0} B), leaf ≈ {workload.AverageLeafBytes:N0} B; generated in {generation.Elapsed.TotalSeconds:0.0} s");
        if (workload.MaxBodyBytes > 1024 * 1024 || settings.Batch > 1000)
        {
            Console.WriteLine("  warning: the server's default limits are 1,000 events and 1 MiB per request; expect 413 errors unless the server is configured for more.");
        }

        var atpRounds = new List<AtpFigures>();
        var baselineRounds = new List<LoopResult>();
        var martenRounds = new List<LoopResult>();
        for (var round = 1; round <= settings.Rounds; round++)
        {
            if (settings.Rounds > 1)
            {
                Console.WriteLine();
                Console.WriteLine($"Round {round} of {settings.Rounds}");
            }

            if (!settings.BaselineOnly)
            {
                await SettleDatabaseAsync(settings, cancellationToken);
                var figures = await RunAtpAsync(settings, workload, warmup, duration, progress, cancellationToken);
                atpRounds.Add(figures);
                ReportAtp(figures);
            }

            if (!settings.NoBaseline)
            {
                await SettleDatabaseAsync(settings, cancellationToken);
                var postgres = settings.Engine == "postgres";
                var baseline = postgres
                    ? await RunPostgresBaselineAsync(settings, workload, warmup, duration, progress, cancellationToken)
                    : await RunBaselineAsync(settings, workload, warmup, duration, progress, cancellationToken);
                baselineRounds.Add(baseline);
                var what = postgres
                    ? $"PostgreSQL multi-row INSERT, synchronous_commit as configured, {settings.Batch} rows per statement, {settings.Clients} connections"
                    : $"SQLite WAL, synchronous=FULL, {settings.Batch} rows per transaction, 1 writer, {settings.Clients} producers";
                Console.WriteLine();
                Console.WriteLine($"Baseline ({what}): {baseline.UnitsPerSecond:N0} rows/s, {baseline.OperationsPerSecond:N0} commits/s, batch latency p50 {Ms(baseline.PercentileMs(50))} ms, p95 {Ms(baseline.PercentileMs(95))} ms, p99 {Ms(baseline.PercentileMs(99))} ms; CPU {FormatCpu(baseline.Cpu)}");
                WarnIfShared(baseline);
            }

            if (settings.Marten)
            {
                await SettleDatabaseAsync(settings, cancellationToken);
                var marten = await RunMartenAsync(settings, workload, warmup, duration, progress, cancellationToken);
                martenRounds.Add(marten);
                Console.WriteLine();
                Console.WriteLine($"Marten event store ({settings.Batch} events per SaveChanges, one stream per tenant, {settings.Clients} sessions): {marten.UnitsPerSecond:N0} events/s, batch latency p50 {Ms(marten.PercentileMs(50))} ms, p99 {Ms(marten.PercentileMs(99))} ms, errors {marten.Errors:N0}; CPU {FormatCpu(marten.Cpu)}");
                WarnIfShared(marten);
            }
        }

        var rounds = Enumerable.Range(0, settings.Rounds)
            .Select(i => new Round(atpRounds.ElementAtOrDefault(i)?.Result, baselineRounds.ElementAtOrDefault(i), martenRounds.ElementAtOrDefault(i)))
            .ToList();
        var atp = atpRounds.Count == 0 ? null : atpRounds[0] with { Result = LoopResult.Combine([.. atpRounds.Select(a => a.Result)]) };
        var total = new Round(atp?.Result, baselineRounds.Count == 0 ? null : LoopResult.Combine(baselineRounds), martenRounds.Count == 0 ? null : LoopResult.Combine(martenRounds));
        if (settings.Rounds > 1)
        {
            Console.WriteLine();
            Console.WriteLine($"All {settings.Rounds} rounds: ATP {N0(total.Atp?.UnitsPerSecond)} events/s, baseline {N0(total.Baseline?.UnitsPerSecond)} rows/s (ATP ÷ baseline {Ratio(total.Atp, total.Baseline)}, per round {string.Join(" / ", rounds.Select(r => Ratio(r.Atp, r.Baseline)))})"
                + (total.Marten is null ? "" : $", Marten {N0(total.Marten.UnitsPerSecond)} events/s (ATP ÷ Marten {Ratio(total.Atp, total.Marten)}, per round {string.Join(" / ", rounds.Select(r => Ratio(r.Atp, r.Marten)))})"));
        }

        Console.WriteLine();
        Console.WriteLine(Markdown(settings, workload, commandLine, atp, rounds, total));
        return atp is { } a && (a.Result.Errors + a.Result.ErrorsOutsideWindow) > 0 ? LoadTestCommand.ExitRequestErrors : LoadTestCommand.ExitOk;
    }

    // Every phase on PostgreSQL starts on a database at rest: an earlier phase's rows vacuumed and analysed (otherwise
    // autovacuum works through them during this phase: one run showed it on ATP's log partitions all through the
    // baseline's phase), and a checkpoint taken (otherwise one set off by the earlier phase's WAL may run through this
    // one). The checkpoint needs the owner role to be a member of pg_checkpoint (postgres.sh grants it); without it the
    // run goes on and says so.
    private static async Task SettleDatabaseAsync(LoadTestSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Engine != "postgres")
        {
            return;
        }

        await using var connection = new Npgsql.NpgsqlConnection(settings.PgAdminConnection);
        await connection.OpenAsync(cancellationToken);
        var started = Stopwatch.StartNew();
        await using (var vacuum = new Npgsql.NpgsqlCommand("VACUUM (ANALYZE)", connection) { CommandTimeout = 1800 })
        {
            // As the database owner: every table of the run; shared catalogues are skipped with a notice.
            await vacuum.ExecuteNonQueryAsync(cancellationToken);
        }

        var vacuumed = started.Elapsed;
        try
        {
            await using var checkpoint = new Npgsql.NpgsqlCommand("CHECKPOINT", connection) { CommandTimeout = 600 };
            await checkpoint.ExecuteNonQueryAsync(cancellationToken);
            Console.WriteLine($"  VACUUM (ANALYZE) and CHECKPOINT before this phase: {vacuumed.TotalSeconds:0.0} s + {(started.Elapsed - vacuumed).TotalSeconds:0.0} s");
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == "42501")
        {
            Console.WriteLine($"  VACUUM (ANALYZE) before this phase: {vacuumed.TotalSeconds:0.0} s; warning: no CHECKPOINT (the owner role is not a member of pg_checkpoint), so a checkpoint set off by an earlier phase's WAL may slow this one.");
        }
    }

    private static void ReportAtp(AtpFigures atp)
    {
        Console.WriteLine();
        Console.WriteLine($"ATP: {atp.Result.UnitsPerSecond:N0} events/s, {atp.Result.OperationsPerSecond:N0} requests/s, latency p50 {Ms(atp.Result.PercentileMs(50))} ms, p95 {Ms(atp.Result.PercentileMs(95))} ms, p99 {Ms(atp.Result.PercentileMs(99))} ms (max {Ms(atp.Result.PercentileMs(100))}), errors {atp.Result.Errors:N0}" + (atp.Result.ErrorsOutsideWindow > 0 ? $" (+{atp.Result.ErrorsOutsideWindow:N0} outside the measured window)" : ""));
        Console.WriteLine($"     {atp.Result.Units:N0} events in {atp.Result.Operations:N0} requests over {atp.Result.Seconds:0} s; CPU {FormatCpu(atp.Result.Cpu)}");
        WarnIfShared(atp.Result);
        foreach (var problem in atp.Problems)
        {
            Console.WriteLine($"     failed request: {problem}");
        }

        foreach (var line in atp.ServerProblems)
        {
            Console.WriteLine($"     server log: {line}");
        }
    }

    private static string Ratio(LoopResult? numerator, LoopResult? denominator) =>
        numerator is not null && denominator is not null && denominator.UnitsPerSecond > 0
            ? (numerator.UnitsPerSecond / denominator.UnitsPerSecond).ToString("0.00", CultureInfo.InvariantCulture)
            : "—";

    private static async Task<AtpFigures> RunAtpAsync(LoadTestSettings settings, Workload workload, TimeSpan warmup, TimeSpan duration, TimeSpan progress, CancellationToken cancellationToken)
    {
        using var http = AtpClient.CreateHttpClient(settings.Clients);
        ServerProcess? server = null;
        try
        {
            Uri url;
            string adminKey;
            var probes = new List<CpuProbe> { new("load generator", () => Environment.CpuUsage.TotalTime), new("whole machine", MachineCpu.BusyTime) };
            if (settings.Url is null)
            {
                var starting = Stopwatch.StartNew();
                server = await ServerProcess.StartAsync(settings.ServerDll, ServerEnvironment(settings), http, cancellationToken);
                url = server.Url;
                adminKey = server.AdminKey;
                probes.Insert(1, new CpuProbe("server", server.CpuTime));
                Console.WriteLine($"  server: {server.ServerDll} on {url} (data {server.DataDirectory.FullName}), ready in {starting.Elapsed.TotalSeconds:0.0} s");
            }
            else
            {
                url = settings.Url;
                adminKey = settings.AdminKey!;
                Console.WriteLine($"  server: {url} (already running)");
            }

            var client = new AtpClient(http, url);
            var creating = Stopwatch.StartNew();
            var tenants = await client.CreateTenantsAsync(adminKey, settings.Tenants, cancellationToken);
            Console.WriteLine($"  created {tenants.Length} tenants ({tenants[0].Id} …) with an events:write key each in {creating.Elapsed.TotalSeconds:0.0} s");
            long spreadNext = 0;
            Console.WriteLine($"ATP: {settings.Clients} clients × batch {settings.Batch}, {settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s measured");

            var result = await ClosedLoop.RunAsync(
                "atp",
                settings.Clients,
                warmup,
                duration,
                progress,
                "events",
                (worker, iteration, ct) =>
                {
                    if (settings.Spread)
                    {
                        var next = Interlocked.Increment(ref spreadNext) - 1;
                        var target = (int)(next % tenants.Length);
                        var pooled = workload.Tenants[target % workload.Tenants.Count].BodyFor(worker, iteration);
                        return client.SendAsync(tenants[target], pooled, workload.Batch, checkReceipts: iteration == 0, ct);
                    }

                    var tenant = worker % tenants.Length;
                    var body = workload.Tenants[tenant].BodyFor(worker, iteration);
                    return client.SendAsync(tenants[tenant], body, workload.Batch, checkReceipts: iteration == 0, ct);
                },
                probes,
                cancellationToken);

            List<string> serverProblems = server is null ? [] : [.. server.Problems(5)];
            if (server is not null && server.ProblemCount() > serverProblems.Count)
            {
                serverProblems.Add($"… {server.ProblemCount()} warning/error entries in all");
            }

            if (server is not null && server.HasExited)
            {
                serverProblems.Add($"the server exited during the run; its last output:\n{server.LogTail(30)}");
            }

            return new AtpFigures(result, client.Problems, serverProblems, server is null ? "already running server" : "child process");
        }
        finally
        {
            // Stopped before the baseline so an idle server (sealer ticks, WAL checkpoints) does not share the machine with it.
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static async Task<LoopResult> RunBaselineAsync(LoadTestSettings settings, Workload workload, TimeSpan warmup, TimeSpan duration, TimeSpan progress, CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("atp-loadtest-baseline-");
        try
        {
            Console.WriteLine();
            Console.WriteLine($"Baseline: {settings.Clients} producers × {settings.Batch} rows per transaction → 1 SQLite writer ({Path.Combine(directory.FullName, "baseline.db")}), {settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s measured");
            using var baseline = new SqliteBaseline(Path.Combine(directory.FullName, "baseline.db"), settings.Tenants);
            var result = await ClosedLoop.RunAsync(
                "baseline",
                settings.Clients,
                warmup,
                duration,
                progress,
                "rows",
                (worker, iteration, ct) =>
                {
                    var tenant = worker % settings.Tenants;
                    var leaves = workload.Tenants[tenant].Leaves;
                    var start = ((iteration + (worker * 7L)) * settings.Batch) % leaves.Length;
                    return baseline.InsertBatchAsync(tenant, leaves, start, settings.Batch, ct);
                },
                [new CpuProbe("process", () => Environment.CpuUsage.TotalTime), new CpuProbe("whole machine", MachineCpu.BusyTime)],
                cancellationToken);
            Console.WriteLine($"  baseline database holds {baseline.RowCount():N0} rows");
            return result;
        }
        finally
        {
            ServerProcess.TryDelete(directory);
        }
    }

    private static Dictionary<string, string> ServerEnvironment(LoadTestSettings settings)
    {
        Dictionary<string, string> environment = settings.Engine == "postgres"
            ? new()
            {
                ["Atp__Storage__Provider"] = "postgres",
                ["ConnectionStrings__Atp"] = settings.PgConnection!,
                ["ConnectionStrings__AtpAdmin"] = settings.PgAdminConnection!,
            }
            : [];
        if (settings.NoProjector)
        {
            environment["Atp__Query__Projector"] = "false";
        }

        return environment;
    }

    private static async Task<LoopResult> RunPostgresBaselineAsync(LoadTestSettings settings, Workload workload, TimeSpan warmup, TimeSpan duration, TimeSpan progress, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"Baseline: {settings.Clients} connections × {settings.Batch} rows per INSERT into a fresh PostgreSQL table, {settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s measured");
        await using var baseline = await PostgresBaseline.CreateAsync(settings.PgAdminConnection!, settings.Tenants, settings.Clients, cancellationToken);
        var result = await ClosedLoop.RunAsync(
            "baseline",
            settings.Clients,
            warmup,
            duration,
            progress,
            "rows",
            (worker, iteration, ct) =>
            {
                var tenant = worker % settings.Tenants;
                var leaves = workload.Tenants[tenant].Leaves;
                var start = ((iteration + (worker * 7L)) * settings.Batch) % leaves.Length;
                return baseline.InsertBatchAsync(worker, tenant, leaves, start, settings.Batch, ct);
            },
            [new CpuProbe("process", () => Environment.CpuUsage.TotalTime), new CpuProbe("whole machine", MachineCpu.BusyTime)],
            cancellationToken);
        Console.WriteLine($"  baseline table holds {await baseline.RowCountAsync(cancellationToken):N0} rows");
        return result;
    }

    private static async Task<LoopResult> RunMartenAsync(LoadTestSettings settings, Workload workload, TimeSpan warmup, TimeSpan duration, TimeSpan progress, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"Marten: {settings.Clients} sessions × {settings.Batch} events per SaveChanges into a fresh event store, {settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s measured");
        using var marten = await MartenComparison.CreateAsync(settings.PgAdminConnection!, workload, cancellationToken);
        var result = await ClosedLoop.RunAsync(
            "marten",
            settings.Clients,
            warmup,
            duration,
            progress,
            "events",
            (worker, iteration, ct) => marten.AppendBatchAsync(worker % settings.Tenants, (iteration + (worker * 7L)) * settings.Batch, settings.Batch, ct),
            [new CpuProbe("process", () => Environment.CpuUsage.TotalTime), new CpuProbe("whole machine", MachineCpu.BusyTime)],
            cancellationToken);
        Console.WriteLine($"  event store holds {await marten.EventCountAsync(cancellationToken):N0} events");
        foreach (var problem in marten.Problems)
        {
            Console.WriteLine($"  failed append: {problem}");
        }

        return result;
    }

    private static string Markdown(LoadTestSettings settings, Workload workload, string commandLine, AtpFigures? atp, IReadOnlyList<Round> rounds, Round total)
    {
        var md = new StringBuilder();
        md.AppendLine("```markdown");
        md.AppendLine(CultureInfo.InvariantCulture, $"#### ATP load test, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Command: `{commandLine}`");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}; server: {atp?.ServerKind ?? "not run"}{(atp is null ? "" : ", load generator on the same machine")}. Event data ≈ {settings.EventBytes} B, leaf ≈ {workload.AverageLeafBytes:N0} B.{CpuNote("ATP", total.Atp)}{CpuNote("baseline", total.Baseline)}");
        md.AppendLine();
        md.AppendLine("| configuration | ATP events/s | requests/s | p50 ms | p95 ms | p99 ms | errors | baseline rows/s | ATP ÷ baseline |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var configuration = $"{settings.Tenants} tenants, {settings.Clients} clients, batch {settings.Batch}, data ≈{settings.EventBytes} B, {settings.DurationSeconds} s";
        if (rounds.Count > 1)
        {
            for (var i = 0; i < rounds.Count; i++)
            {
                md.AppendLine(Row($"round {i + 1} of {rounds.Count}", rounds[i]));
            }

            configuration = $"all {rounds.Count} rounds: {configuration} each";
        }

        md.AppendLine(Row(configuration, total));
        if (total.Marten is { } marten)
        {
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Marten event store, same events, {settings.Batch} per SaveChanges, one stream per tenant: {N0(marten.UnitsPerSecond)} events/s, p50 {Ms(marten.PercentileMs(50))} ms, p99 {Ms(marten.PercentileMs(99))} ms, errors {marten.Errors + marten.ErrorsOutsideWindow:N0}{(total.Atp is not null ? $"; ATP ÷ Marten {Ratio(total.Atp, marten)}" : "")}{(rounds.Count > 1 ? $" (per round {string.Join(" / ", rounds.Select(r => Ratio(r.Atp, r.Marten)))})" : "")}.");
        }

        md.Append("```");
        return md.ToString();
    }

    private static string Row(string configuration, Round round)
    {
        var r = round.Atp;
        return $"| {configuration} | {N0(r?.UnitsPerSecond)} | {N0(r?.OperationsPerSecond)} | {Ms(r?.PercentileMs(50))} | {Ms(r?.PercentileMs(95))} | {Ms(r?.PercentileMs(99))} | {(r is null ? "—" : (r.Errors + r.ErrorsOutsideWindow).ToString("N0", CultureInfo.InvariantCulture))} | {N0(round.Baseline?.UnitsPerSecond)} | {Ratio(r, round.Baseline)} |";
    }

    /// <summary>Cores used by other processes during the window (whole machine minus this run's processes); null when unknown.</summary>
    private static double? OtherCores(LoopResult result)
    {
        // Without a child server (--url) its CPU is not measured separately, so the remainder would include it.
        if (result.Cpu.All(c => c.Name != "server" && c.Name != "process"))
        {
            return null;
        }

        var machine = result.Cpu.Where(c => c.Name == "whole machine").Select(c => (double?)c.Cores).FirstOrDefault();
        return machine is { } m ? Math.Max(0, m - result.Cpu.Where(c => c.Name != "whole machine").Sum(c => c.Cores)) : null;
    }

    private static void WarnIfShared(LoopResult result)
    {
        if (OtherCores(result) is { } other && other > 0.25)
        {
            Console.WriteLine($"     warning: other processes used {other:0.00} of {Environment.ProcessorCount} cores during the window; these figures understate what this machine can do.");
        }
    }

    private static string CpuNote(string what, LoopResult? result) =>
        result is null || result.Cpu.Count == 0
            ? ""
            : $" CPU during the {what} window: {FormatCpu(result.Cpu)}" + (OtherCores(result) is { } other ? $" (other processes {other:0.00})." : ".");

    private static string Describe(LoadTestSettings s) =>
        $"{(s.BaselineOnly ? "baseline only" : s.Url is null ? "child server" : $"server {s.Url}")}, engine {s.Engine}{(s.Marten ? " (+ Marten)" : "")}{(s.NoProjector ? ", projector off (ingest node)" : "")}, {s.Tenants} tenants{(s.Spread ? " (requests spread round-robin)" : "")}, {s.Clients} clients, batch {s.Batch}, event data ≈ {s.EventBytes} B, {s.WarmupSeconds} s warm-up + {s.DurationSeconds} s{(s.NoBaseline ? ", no baseline" : "")}";

    private static string FormatCpu(IReadOnlyList<(string Name, double Cores)> cpu) =>
        cpu.Count == 0 ? "n/a" : string.Join(", ", cpu.Select(c => $"{c.Name} {c.Cores:0.00} cores"));

    private static string N0(double? value) => value is { } v ? v.ToString("N0", CultureInfo.InvariantCulture) : "—";

    private static string Ms(double? value) => value is { } v && !double.IsNaN(v) ? v.ToString("0.0", CultureInfo.InvariantCulture) : "—";

    /// <summary>The command that reproduces this run; the admin key is never echoed.</summary>
    internal static string CommandLine(string[] args)
    {
        var parts = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg == "--admin-key")
            {
                parts.Add(arg);
                if (i + 1 < args.Length)
                {
                    parts.Add("<admin-key>");
                    i++;
                }

                continue;
            }

            if (arg.StartsWith("--admin-key=", StringComparison.Ordinal) || arg.StartsWith("--admin-key:", StringComparison.Ordinal))
            {
                parts.Add("--admin-key <admin-key>");
                continue;
            }

            parts.Add(Quote(arg));
        }

        return "dotnet run -c Release --project bench/Atp.LoadTest" + (parts.Count > 0 ? " -- " + string.Join(' ', parts) : "");
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or '=' or ',')
            ? arg
            : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>What one round (or all rounds together) measured; null where that part did not run.</summary>
    private sealed record Round(LoopResult? Atp, LoopResult? Baseline, LoopResult? Marten);

    private sealed record AtpFigures(LoopResult Result, IReadOnlyList<string> Problems, IReadOnlyList<string> ServerProblems, string ServerKind);
}
