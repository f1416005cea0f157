using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>
/// The subject listing reads indexes from the subject's key on, never a scan of the tenant's read models: asked of
/// SQLite's planner on the real read-model schema.
/// </summary>
public sealed class SubjectQueryPlanTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-subject-plan-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_subject_query_seeks_the_actor_index_and_the_targets_key_and_scans_nothing()
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp-read.db"), Pooling = false }.ToString());
        connection.Open();
        ReadModelSchema.Migrate(connection);
        using var explain = connection.CreateCommand();
        explain.CommandText = "EXPLAIN QUERY PLAN " + SqliteReadModels.SubjectSql;
        foreach (var name in new[] { "$num", "$subject", "$snapshot", "$afterAt", "$afterIdx", "$limit" })
        {
            explain.Parameters.AddWithValue(name, 1);
        }

        var plan = new List<string>();
        using (var reader = explain.ExecuteReader())
        {
            while (reader.Read())
            {
                plan.Add(reader.GetString(3));
            }
        }

        var text = string.Join('\n', plan);
        Assert.Contains(plan, p => p.StartsWith("SEARCH event_index USING COVERING INDEX event_index_actor (tenant_num=? AND actor_id=? AND (occurred_at,idx)>(?,?))", StringComparison.Ordinal));
        Assert.Contains(plan, p => p.StartsWith("SEARCH event_targets USING PRIMARY KEY (tenant_num=? AND target_id=?", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, p => p.StartsWith("SCAN", StringComparison.Ordinal));
        Assert.True(plan.Count(p => p.StartsWith("SEARCH", StringComparison.Ordinal)) == 2, text);
    }
}
