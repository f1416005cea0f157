using System.CommandLine;
using Atp.QueryBench;

var data = new Option<string>("--data") { Description = "Data directory (atp.db and the data set's querybench.json).", Required = true };
var seed = new Option<int>("--seed") { Description = "Seed of the data set (generate) or of the query parameters (query).", DefaultValueFactory = _ => 42 };
var progress = new Option<int>("--progress") { Description = "Seconds between progress lines (0: none).", DefaultValueFactory = _ => 5 };

var events = new Option<long>("--events") { Description = "Events in the data set.", DefaultValueFactory = _ => 10_000_000 };
var callers = new Option<int>("--callers") { Description = "Concurrent IngestionService callers (batches of 1,000 each).", DefaultValueFactory = _ => 4 };
var generate = new Command("generate", "Create a store with one tenant of --events realistic events (skipped when --data already holds that data set), project it, report rates and size.");
foreach (var option in new Option[] { data, events, seed, callers, progress })
{
    generate.Options.Add(option);
}

generate.SetAction((parse, ct) => GenerateRun.RunAsync(parse.GetValue(data)!, parse.GetValue(events), parse.GetValue(seed), parse.GetValue(callers), parse.GetValue(progress), args, ct));

var queries = new Option<int>("--queries") { Description = "Queries per kind (after a few warm-up queries).", DefaultValueFactory = _ => 300 };
var kinds = new Option<string[]>("--kind") { Description = $"Only these kinds (repeatable): {QueryRun.KindNames}.", AllowMultipleArgumentsPerToken = true };
var budget = new Option<int>("--budget") { Description = "Seconds per kind after which a slow kind stops (having run at least 20 queries).", DefaultValueFactory = _ => 120 };
var query = new Command("query", "Run the query mix against a generated data set and report latency percentiles per kind.");
foreach (var option in new Option[] { data, queries, seed, budget, kinds })
{
    query.Options.Add(option);
}

query.SetAction((parse, ct) => QueryRun.RunAsync(parse.GetValue(data)!, parse.GetValue(queries), parse.GetValue(seed), parse.GetValue(budget), parse.GetValue(kinds) is { Length: > 0 } k ? k : null, args, ct));

var rate = new Option<int>("--rate") { Description = "Events per second offered (open loop, batches of 100).", DefaultValueFactory = _ => 20_000 };
var seconds = new Option<int>("--seconds") { Description = "Seconds of ingest.", DefaultValueFactory = _ => 30 };
var freshness = new Command("freshness", "On a fresh store: open-loop ingest at --rate while a projection loop runs; report projection lag percentiles.");
foreach (var option in new Option[] { data, rate, seconds, seed, progress })
{
    freshness.Options.Add(option);
}

freshness.SetAction((parse, ct) => FreshnessRun.RunAsync(parse.GetValue(data)!, parse.GetValue(rate), parse.GetValue(seconds), parse.GetValue(seed), parse.GetValue(progress), args, ct));

var sql = new Option<string>("--sql") { Description = "The statement to explain; parameters may be given inline.", Required = true };
var explain = new Command("explain", "Print SQLite's EXPLAIN QUERY PLAN for a statement, on a read-only connection to the data set.");
explain.Options.Add(data);
var runs = new Option<int>("--runs") { Description = "Also run the statement this many times and report its time.", DefaultValueFactory = _ => 0 };
explain.Options.Add(sql);
explain.Options.Add(runs);
explain.SetAction(parse => ExplainRun.Run(parse.GetValue(data)!, parse.GetValue(sql)!, parse.GetValue(runs)));

var root = new RootCommand("ATP query bench: search on the embedded engine at scale (generate a data set, run a query mix, measure projection freshness).");
root.Subcommands.Add(generate);
root.Subcommands.Add(query);
root.Subcommands.Add(freshness);
root.Subcommands.Add(explain);
return await root.Parse(args).InvokeAsync();
