using Npgsql;

namespace Atp.LoadTest;

/// <summary>
/// The floor ATP on PostgreSQL is compared with: the same leaf bytes written to a fresh table (tenant_id, idx, leaf)
/// with one plain multi-row <c>INSERT … VALUES (…), (…), …</c> per batch — one statement, one commit, one WAL flush —
/// prepared once per connection, one connection per producer (PostgreSQL takes concurrent writers). No validation,
/// no hashing, no Merkle nodes, no outbox, no row-level security, no HTTP.
/// </summary>
internal sealed class PostgresBaseline : IAsyncDisposable
{
    private const string Table = "atp_bench.baseline_rows";

    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlConnection[] _connections;
    private readonly NpgsqlCommand?[] _inserts;
    private readonly long[] _nextIndex;
    private readonly string[] _tenantIds;

    private PostgresBaseline(NpgsqlDataSource dataSource, NpgsqlConnection[] connections, int tenants)
    {
        _dataSource = dataSource;
        _connections = connections;
        _inserts = new NpgsqlCommand?[connections.Length];
        _nextIndex = new long[tenants];
        _tenantIds = Enumerable.Range(0, tenants).Select(t => $"baseline-{t}").ToArray();
    }

    public static async Task<PostgresBaseline> CreateAsync(string connectionString, int tenants, int workers, CancellationToken cancellationToken)
    {
        var dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var setup = dataSource.CreateCommand($"""
            CREATE SCHEMA IF NOT EXISTS atp_bench;
            DROP TABLE IF EXISTS {Table};
            CREATE TABLE {Table} (tenant_id text NOT NULL, idx bigint NOT NULL, leaf bytea NOT NULL, PRIMARY KEY (tenant_id, idx));
            """))
        {
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }

        var connections = new NpgsqlConnection[workers];
        for (var i = 0; i < workers; i++)
        {
            connections[i] = await dataSource.OpenConnectionAsync(cancellationToken);
        }

        return new PostgresBaseline(dataSource, connections, tenants);
    }

    public async Task<OpResult> InsertBatchAsync(int worker, int tenant, byte[][] leaves, long start, int count, CancellationToken cancellationToken)
    {
        var insert = _inserts[worker] ??= await PrepareAsync(_connections[worker], count, cancellationToken);
        var first = Interlocked.Add(ref _nextIndex[tenant], count) - count;
        for (var i = 0; i < count; i++)
        {
            insert.Parameters[(3 * i) + 0].Value = _tenantIds[tenant];
            insert.Parameters[(3 * i) + 1].Value = first + i;
            insert.Parameters[(3 * i) + 2].Value = leaves[(int)((start + i) % leaves.Length)];
        }

        await insert.ExecuteNonQueryAsync(cancellationToken);
        return new OpResult(true, count);
    }

    public async Task<long> RowCountAsync(CancellationToken cancellationToken)
    {
        await using var count = _dataSource.CreateCommand($"SELECT count(*) FROM {Table}");
        return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var insert in _inserts)
        {
            if (insert is not null)
            {
                await insert.DisposeAsync();
            }
        }

        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        await using (var drop = _dataSource.CreateCommand($"DROP TABLE IF EXISTS {Table}"))
        {
            await drop.ExecuteNonQueryAsync();
        }

        await _dataSource.DisposeAsync();
    }

    private static async Task<NpgsqlCommand> PrepareAsync(NpgsqlConnection connection, int rows, CancellationToken cancellationToken)
    {
        var values = string.Join(", ", Enumerable.Range(0, rows).Select(i => $"(${(3 * i) + 1}, ${(3 * i) + 2}, ${(3 * i) + 3})"));
        var insert = new NpgsqlCommand($"INSERT INTO {Table} (tenant_id, idx, leaf) VALUES {values}", connection);
        for (var i = 0; i < rows; i++)
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            insert.Parameters.Add(new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bytea });
        }

        await insert.PrepareAsync(cancellationToken);
        return insert;
    }
}
