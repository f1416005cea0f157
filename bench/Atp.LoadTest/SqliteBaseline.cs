using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Atp.LoadTest;

/// <summary>
/// The floor ATP is compared with: the same leaf bytes written durably to SQLite with ATP's settings (WAL,
/// synchronous=FULL), one INSERT per row of (tenant_id, idx, leaf) and one transaction (one commit, one fsync) per
/// batch — no validation, no hashing, no Merkle nodes, no outbox, no HTTP. SQLite has one writer at a time, so the
/// concurrent producers hand their batches to a single writer connection through a channel (no busy-wait back-off to
/// distort the figure); each producer waits for its batch's commit before sending the next, like an HTTP client.
/// </summary>
internal sealed class SqliteBaseline : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly Channel<Job> _jobs = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread _writer;
    private readonly long[] _nextIndex;
    private readonly string[] _tenantIds;

    public SqliteBaseline(string databasePath, int tenants)
    {
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
        }.ToString());
        _connection.Open();
        using (var setup = _connection.CreateCommand())
        {
            setup.CommandText = """
                PRAGMA journal_mode=WAL;
                PRAGMA synchronous=FULL;
                CREATE TABLE rows (
                    tenant_id TEXT NOT NULL,
                    idx INTEGER NOT NULL,
                    leaf BLOB NOT NULL,
                    PRIMARY KEY (tenant_id, idx)
                ) WITHOUT ROWID;
                """;
            setup.ExecuteNonQuery();
        }

        _insert = _connection.CreateCommand();
        _insert.CommandText = "INSERT INTO rows (tenant_id, idx, leaf) VALUES ($t, $i, $l)";
        _insert.Parameters.Add(new SqliteParameter { ParameterName = "$t" });
        _insert.Parameters.Add(new SqliteParameter { ParameterName = "$i" });
        _insert.Parameters.Add(new SqliteParameter { ParameterName = "$l" });
        _nextIndex = new long[tenants];
        _tenantIds = Enumerable.Range(0, tenants).Select(t => $"baseline-{t}").ToArray();
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "baseline-writer" };
        _writer.Start();
    }

    /// <summary>Inserts <paramref name="count"/> leaves (cycling through the pool from <paramref name="start"/>) in one transaction.</summary>
    public async Task<OpResult> InsertBatchAsync(int tenant, byte[][] leaves, long start, int count, CancellationToken cancellationToken)
    {
        var job = new Job(tenant, leaves, start, count, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        await _jobs.Writer.WriteAsync(job, cancellationToken);
        await job.Done.Task.WaitAsync(cancellationToken);
        return new OpResult(true, count);
    }

    public long RowCount()
    {
        using var count = _connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM rows";
        lock (_connection)
        {
            return (long)count.ExecuteScalar()!;
        }
    }

    public void Dispose()
    {
        _jobs.Writer.TryComplete();
        _writer.Join(TimeSpan.FromSeconds(30));
        _insert.Dispose();
        _connection.Dispose();
    }

    private void WriteLoop()
    {
        var reader = _jobs.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (reader.TryRead(out var job))
            {
                try
                {
                    lock (_connection)
                    {
                        using var transaction = _connection.BeginTransaction();
                        _insert.Transaction = transaction;
                        var tenantId = _tenantIds[job.Tenant];
                        for (var i = 0; i < job.Count; i++)
                        {
                            _insert.Parameters[0].Value = tenantId;
                            _insert.Parameters[1].Value = _nextIndex[job.Tenant]++;
                            _insert.Parameters[2].Value = job.Leaves[(int)((job.Start + i) % job.Leaves.Length)];
                            _insert.ExecuteNonQuery();
                        }

                        transaction.Commit();
                    }

                    job.Done.TrySetResult();
                }
                catch (SqliteException e)
                {
                    job.Done.TrySetException(e);
                }
            }
        }
    }

    private sealed record Job(int Tenant, byte[][] Leaves, long Start, int Count, TaskCompletionSource Done);
}
