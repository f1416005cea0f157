using Microsoft.Data.Sqlite;

namespace Atp.QueryBench;

/// <summary>
/// <c>explain</c>: SQLite's plan for a statement against the data set's read models (the bundled SQLite, which has FTS5
/// contentless-delete), and with --runs the statement's own time (all rows read), to try a rewrite before proposing it.
/// </summary>
internal static class ExplainRun
{
    public static int Run(string directory, string sql, int runs)
    {
        // The read models' file, with the log's attached as "log" (log.log_entries, log.tenants …).
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = BenchSupport.ReadModelPath(directory), Mode = SqliteOpenMode.ReadOnly }.ToString());
        connection.Open();
        using (var attach = connection.CreateCommand())
        {
            attach.CommandText = "ATTACH DATABASE $path AS log";
            attach.Parameters.AddWithValue("$path", "file:" + BenchSupport.DatabasePath(directory) + "?mode=ro");
            attach.ExecuteNonQuery();
        }

        using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + sql;
        using var reader = command.ExecuteReader();
        var depth = new Dictionary<long, int> { [0] = 0 };
        while (reader.Read())
        {
            var id = reader.GetInt64(0);
            var parent = reader.GetInt64(1);
            var level = depth.TryGetValue(parent, out var d) ? d + 1 : 1;
            depth[id] = level;
            Console.WriteLine(new string(' ', level * 2) + reader.GetString(3));
        }

        reader.Close();
        var times = new List<double>();
        var rows = 0;
        using var run = connection.CreateCommand();
        run.CommandText = sql;
        for (var i = 0; i < runs; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var result = run.ExecuteReader();
            rows = 0;
            while (result.Read())
            {
                rows++;
            }

            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        if (runs > 0)
        {
            Console.WriteLine($"  {rows} rows; {runs} runs: first {BenchSupport.Ms(times[0])} ms, median {BenchSupport.Ms(BenchSupport.Percentile(times, 50))} ms, max {BenchSupport.Ms(BenchSupport.Percentile(times, 100))} ms");
        }

        return 0;
    }
}
