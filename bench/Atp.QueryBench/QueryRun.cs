using System.Diagnostics;
using System.Text.Json;
using Atp.Core.Query;
using Microsoft.Data.Sqlite;

namespace Atp.QueryBench;

/// <summary>
/// <c>query</c>: for each query kind, N searches with parameters drawn from the stored data (a random stored event
/// supplies the actor, action, target, names …), each a first page of 100 newest first and, when there is more, the
/// second page continued from the first page's last position with the same snapshot (as the server's cursor does).
/// Times <see cref="IEventQueryStore.SearchAsync"/> end to end, leaf reads included.
/// </summary>
internal static class QueryRun
{
    private const int Warmup = 5;
    private const int PageSize = 100;

    /// <summary>The kinds, in report order, with the issue's target for each.</summary>
    public static readonly (string Kind, string Description, double TargetMs)[] Kinds =
    [
        ("actor", "by actor (id)", 50),
        ("action-prefix", "by action prefix (`document.*` …, each prefix equally often)", 50),
        ("action", "by exact action", 50),
        ("target", "by target (type + id)", 50),
        ("target-type", "by target type alone (each type equally often)", 50),
        ("week", "by time window (a random week)", 50),
        ("combined", "actor type + action prefix + 30-day window + outcome", 50),
        ("text-1", "full text, one name term", 150),
        ("text-2", "full text, two name terms", 150),
    ];

    public static async Task<int> RunAsync(string directory, int queries, int seed, int budgetSeconds, string[]? onlyKinds, string[] args, CancellationToken cancellationToken)
    {
        if (Manifest.Read(directory) is not { } manifest)
        {
            await Console.Error.WriteLineAsync($"atp-querybench: {directory} holds no complete data set; run generate first.");
            return 2;
        }

        Console.WriteLine($"ATP query bench, query: {BenchSupport.CommandLine(args)}");
        Console.WriteLine($"  machine: {BenchSupport.Machine()}, load average {BenchSupport.LoadAverage():0.0}");
        var cacheBefore = BenchSupport.CachedShare(BenchSupport.ReadModelPath(directory));
        Console.WriteLine($"  data set: {BenchSupport.N0(manifest.Events)} events (seed {manifest.Seed}), {BenchSupport.Gb(BenchSupport.DatabaseBytes(directory))} GB; before the run {cacheBefore ?? "page cache state unknown"}");

        var random = new Random(seed);
        using var sampler = new Sampler(BenchSupport.DatabasePath(directory), manifest);
        var kinds = Kinds.Where(k => onlyKinds is null || onlyKinds.Contains(k.Kind)).ToArray();
        var store = BenchSupport.OpenStore(directory);
        var results = new List<KindResult>();
        var cpu = new CpuWindow();
        await using (store.ConfigureAwait(false))
        {
            var status = await store.GetProjectionStatusAsync(DataSetModel.TenantId, cancellationToken)
                ?? throw new InvalidOperationException("No tenant in the data set.");
            foreach (var (kind, description, target) in kinds)
            {
                var parameters = Enumerable.Range(0, queries + Warmup).Select(_ => sampler.Query(kind, random) with { SnapshotSize = status.ProjectedSize }).ToArray();
                var result = new KindResult(kind, description, target, Describe(parameters[Warmup]));
                var budget = Stopwatch.StartNew();
                for (var i = 0; i < parameters.Length; i++)
                {
                    // A slow kind stops after its time budget (at least 20 measured queries), so one run stays bounded.
                    if (i == Warmup)
                    {
                        budget.Restart();
                    }
                    else if (i >= Warmup + 20 && budget.Elapsed.TotalSeconds > budgetSeconds)
                    {
                        break;
                    }

                    var query = parameters[i];
                    var clock = Stopwatch.StartNew();
                    var page = await store.SearchAsync(query, cancellationToken);
                    var first = clock.Elapsed.TotalMilliseconds;
                    double? second = null;
                    if (page.HasMore)
                    {
                        clock.Restart();
                        await store.SearchAsync(query with { After = page.Hits[^1].Position }, cancellationToken);
                        second = clock.Elapsed.TotalMilliseconds;
                    }

                    if (i >= Warmup)
                    {
                        result.First.Add(first);
                        result.Hits.Add(page.Hits.Count);
                        if (second is { } s)
                        {
                            result.Second.Add(s);
                        }
                    }
                }

                results.Add(result);
                Console.WriteLine($"  {kind,-14} n={result.First.Count} page 1: p50 {BenchSupport.Ms(BenchSupport.Percentile(result.First, 50))} p95 {BenchSupport.Ms(BenchSupport.Percentile(result.First, 95))} p99 {BenchSupport.Ms(BenchSupport.Percentile(result.First, 99))} max {BenchSupport.Ms(BenchSupport.Percentile(result.First, 100))} ms, mean hits {result.Hits.Average():0.0}; page 2 ({result.Second.Count}): p50 {BenchSupport.Ms(BenchSupport.Percentile(result.Second, 50))} p95 {BenchSupport.Ms(BenchSupport.Percentile(result.Second, 95))} ms; e.g. {result.Example}");
            }
        }

        var cacheAfter = BenchSupport.CachedShare(BenchSupport.ReadModelPath(directory));
        Console.WriteLine($"  CPU during the run: {cpu.Describe()}; after the run {cacheAfter ?? "page cache state unknown"}");
        Console.WriteLine();
        Console.WriteLine("```markdown");
        Console.WriteLine($"#### ATP query bench, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine();
        Console.WriteLine($"Command: `{BenchSupport.CommandLine(args)}`; {BenchSupport.N0(manifest.Events)} events, up to {queries} queries per kind (+{Warmup} warm-up; a kind stops after {budgetSeconds} s), page of {PageSize}, newest first. Page cache before: {cacheBefore ?? "unknown"}. CPU: {cpu.Describe()}.");
        Console.WriteLine();
        Console.WriteLine("| query | n | p50 ms | p95 ms | p99 ms | max ms | mean hits | page 2 p50 | page 2 p95 | page 2 max | target p95 | met |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var r in results)
        {
            var p95 = Math.Max(BenchSupport.Percentile(r.First, 95), r.Second.Count > 0 ? BenchSupport.Percentile(r.Second, 95) : 0);
            Console.WriteLine($"| {r.Description} | {r.First.Count} | {BenchSupport.Ms(BenchSupport.Percentile(r.First, 50))} | {BenchSupport.Ms(BenchSupport.Percentile(r.First, 95))} | {BenchSupport.Ms(BenchSupport.Percentile(r.First, 99))} | {BenchSupport.Ms(BenchSupport.Percentile(r.First, 100))} | {r.Hits.Average():0.0} | {BenchSupport.Ms(BenchSupport.Percentile(r.Second, 50))} | {BenchSupport.Ms(BenchSupport.Percentile(r.Second, 95))} | {BenchSupport.Ms(BenchSupport.Percentile(r.Second, 100))} | {r.TargetMs:0} | {(p95 <= r.TargetMs ? "yes" : "**no**")} |");
        }

        Console.WriteLine("```");
        return 0;
    }

    private static string Describe(EventQuery q)
    {
        var parts = new List<string>();
        if (q.ActorId is not null)
        {
            parts.Add($"actor={q.ActorId}");
        }

        if (q.ActorType is not null)
        {
            parts.Add($"actorType={q.ActorType}");
        }

        if (q.Action is not null)
        {
            parts.Add($"action={q.Action}{(q.ActionIsPrefix ? "*" : "")}");
        }

        if (q.TargetType is not null)
        {
            parts.Add($"targetType={q.TargetType}");
        }

        if (q.TargetId is not null)
        {
            parts.Add($"targetId={q.TargetId}");
        }

        if (q.Outcome is not null)
        {
            parts.Add($"outcome={q.Outcome}");
        }

        if (q.From is { } from && q.To is { } to)
        {
            parts.Add($"from={from:yyyy-MM-dd} to={to:yyyy-MM-dd}");
        }

        if (q.Text is not null)
        {
            parts.Add($"q={q.Text}");
        }

        return string.Join(' ', parts);
    }

    private sealed record KindResult(string Kind, string Description, double TargetMs, string Example)
    {
        public List<double> First { get; } = [];

        public List<double> Second { get; } = [];

        public List<int> Hits { get; } = [];
    }

    /// <summary>Draws query parameters from random stored events (read-only connection, outside the timed calls).</summary>
    private sealed class Sampler : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly Manifest _manifest;
        private readonly long _num;

        public Sampler(string databasePath, Manifest manifest)
        {
            _manifest = manifest;
            _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadOnly }.ToString());
            _connection.Open();
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT num FROM tenants WHERE id = $id";
            command.Parameters.AddWithValue("$id", DataSetModel.TenantId);
            _num = (long)command.ExecuteScalar()!;
        }

        public EventQuery Query(string kind, Random random)
        {
            var q = new EventQuery(DataSetModel.TenantId) { Limit = PageSize };
            switch (kind)
            {
                case "actor":
                    return q with { ActorId = Event(random).GetProperty("actor").GetProperty("id").GetString() };
                case "action-prefix":
                    return q with { Action = DataSetModel.Prefixes[random.Next(DataSetModel.Prefixes.Length)], ActionIsPrefix = true };
                case "action":
                    return q with { Action = Event(random).GetProperty("action").GetString() };
                case "target":
                {
                    JsonElement targets;
                    while ((targets = Event(random).GetProperty("targets")).GetArrayLength() == 0)
                    {
                    }

                    var target = targets[random.Next(targets.GetArrayLength())];
                    return q with { TargetType = target.GetProperty("type").GetString(), TargetId = target.GetProperty("id").GetString() };
                }

                case "target-type":
                    return q with { TargetType = DataSetModel.TargetTypes[random.Next(DataSetModel.TargetTypes.Length)] };
                case "week":
                {
                    var from = _manifest.End.AddDays(-365).AddTicks((long)(random.NextDouble() * TimeSpan.FromDays(358).Ticks));
                    return q with { From = from, To = from.AddDays(7) };
                }

                case "combined":
                {
                    // All four conditions from one stored event, so the combination exists; the month holds its time.
                    var e = Event(random);
                    var action = e.GetProperty("action").GetString()!;
                    var occurred = e.GetProperty("occurredAt").GetDateTimeOffset();
                    var from = occurred.AddTicks(-(long)(random.NextDouble() * TimeSpan.FromDays(30).Ticks));
                    return q with
                    {
                        ActorType = e.GetProperty("actor").GetProperty("type").GetString(),
                        Action = action[..(action.IndexOf('.', StringComparison.Ordinal) + 1)],
                        ActionIsPrefix = true,
                        Outcome = e.GetProperty("outcome").GetString(),
                        From = from,
                        To = from.AddDays(30),
                    };
                }

                case "text-1":
                case "text-2":
                {
                    // A name of a stored event's actor or target (people, documents, customers, teams …).
                    while (true)
                    {
                        var e = Event(random);
                        var names = new[] { e.GetProperty("actor") }.Concat(e.GetProperty("targets").EnumerateArray())
                            .Where(p => p.TryGetProperty("name", out _)).Select(p => p.GetProperty("name").GetString()!.Split(' ')).ToArray();
                        if (names.Length == 0)
                        {
                            continue;
                        }

                        var terms = names[random.Next(names.Length)].Where(t => t.Length > 0 && char.IsLetter(t[0])).ToArray();
                        if (kind == "text-1" && terms.Length >= 1)
                        {
                            return q with { Text = terms[random.Next(terms.Length)] };
                        }

                        if (kind == "text-2" && terms.Length >= 2)
                        {
                            var at = random.Next(terms.Length - 1);
                            return q with { Text = terms[at] + " " + terms[at + 1] };
                        }
                    }
                }

                default:
                    throw new ArgumentException($"Unknown query kind {kind}.", nameof(kind));
            }
        }

        private JsonElement Event(Random random)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT leaf FROM log_entries WHERE id = $id";
            command.Parameters.AddWithValue("$id", (_num << 40) | random.NextInt64(_manifest.Events));
            using var document = JsonDocument.Parse((byte[])command.ExecuteScalar()!);
            return document.RootElement.Clone();
        }

        public void Dispose() => _connection.Dispose();
    }

    /// <summary>Names of the kinds, for the command line.</summary>
    public static string KindNames => string.Join(", ", Kinds.Select(k => k.Kind));
}
