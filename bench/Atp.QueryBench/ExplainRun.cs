using Microsoft.Data.Sqlite;

namespace Atp.QueryBench;

/// <summary><c>explain</c>: SQLite's plan for a statement against the data set (the bundled SQLite, which has FTS5 contentless-delete).</summary>
internal static class ExplainRun
{
    public static int Run(string directory, string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = BenchSupport.DatabasePath(directory), Mode = SqliteOpenMode.ReadOnly }.ToString());
        connection.Open();
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

        return 0;
    }
}
