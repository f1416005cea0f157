using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// A tenant's projected prefix, kept exact: <c>projections.projected_size</c> moves only over entries every one of
/// which was handled (projected or set aside as a dead letter). Ranges handled ahead of the prefix (after a restart
/// the re-queued start of a log comes after outbox rows for its end) wait in <c>projection_ranges</c> until the gap
/// before them is handled too.
/// </summary>
internal static class HandledRanges
{
    /// <summary>Adds the ranges handled in this transaction and returns the tenant's projected size after them.</summary>
    public static ulong Advance(SqliteConnection connection, SqliteTransaction transaction, string tenantId, IEnumerable<(long First, long Last)> handled)
    {
        long size;
        var ranges = new List<(long First, long Last)>(handled);
        using (var read = connection.CreateCommand())
        {
            read.Transaction = transaction;
            read.CommandText = "SELECT projected_size FROM projections WHERE tenant_id = $t";
            read.Parameters.AddWithValue("$t", tenantId);
            size = read.ExecuteScalar() is long projected ? projected : 0;
            read.CommandText = "SELECT first_idx, last_idx FROM projection_ranges WHERE tenant_id = $t";
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                ranges.Add((reader.GetInt64(0), reader.GetInt64(1)));
            }
        }

        ranges.Sort();
        var waiting = new List<(long First, long Last)>();
        foreach (var (first, last) in ranges)
        {
            if (first <= size)
            {
                size = Math.Max(size, last + 1);
            }
            else if (waiting.Count > 0 && first <= waiting[^1].Last + 1)
            {
                waiting[^1] = (waiting[^1].First, Math.Max(waiting[^1].Last, last));
            }
            else
            {
                waiting.Add((first, last));
            }
        }

        // Sorted by first index, so a range that touches the prefix never follows one that waits for a gap.
        using var write = connection.CreateCommand();
        write.Transaction = transaction;
        write.CommandText = "DELETE FROM projection_ranges WHERE tenant_id = $t";
        write.Parameters.AddWithValue("$t", tenantId);
        write.ExecuteNonQuery();
        write.CommandText = "INSERT INTO projection_ranges (tenant_id, first_idx, last_idx) VALUES ($t, $first, $last)";
        var firstParameter = write.Parameters.Add("$first", SqliteType.Integer);
        var lastParameter = write.Parameters.Add("$last", SqliteType.Integer);
        foreach (var (first, last) in waiting)
        {
            firstParameter.Value = first;
            lastParameter.Value = last;
            write.ExecuteNonQuery();
        }

        SetProjectedSize(connection, transaction, tenantId, (ulong)size);
        return (ulong)size;
    }

    /// <summary>Sets the tenant's projected size (never lowers it).</summary>
    public static void SetProjectedSize(SqliteConnection connection, SqliteTransaction transaction, string tenantId, ulong size)
    {
        using var advance = connection.CreateCommand();
        advance.Transaction = transaction;
        advance.CommandText = """
            INSERT INTO projections (tenant_id, projected_size) VALUES ($t, $size)
            ON CONFLICT (tenant_id) DO UPDATE SET projected_size = MAX(projected_size, excluded.projected_size)
            """;
        advance.Parameters.AddWithValue("$t", tenantId);
        advance.Parameters.AddWithValue("$size", (long)size);
        advance.ExecuteNonQuery();
    }
}
