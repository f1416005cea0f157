using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>Opens connections to one database file of the cell with the settings every connection needs.</summary>
/// <param name="databasePath">The file.</param>
/// <param name="durable">
/// synchronous=FULL (a commit returns only after the WAL is fsynced, so a receipt is never ahead of the disk) for the
/// log; NORMAL (a commit survives a crash of the process, not always a power loss) for the read models, which the
/// store re-queues for projection at start from whatever the file still holds.
/// </param>
internal sealed class SqliteConnections(string databasePath, bool durable = true)
{
    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = databasePath,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Private,
        Pooling = true,
        DefaultTimeout = 30,
    }.ToString();

    // wal_autocheckpoint=0: WAL checkpoints run on SqliteStore's background connection, never inside a writer's commit.
    private readonly string _settings = $"PRAGMA synchronous={(durable ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0;";

    public string DatabasePath => databasePath;

    /// <summary>Closes the idle pooled connections of this file (before it is moved aside).</summary>
    public void ClearPool()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragmas = connection.CreateCommand();

        pragmas.CommandText = "PRAGMA journal_mode=WAL; " + _settings;
        pragmas.ExecuteNonQuery();
        return connection;
    }

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var pragmas = connection.CreateCommand();
        pragmas.CommandText = _settings;
        await pragmas.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }
}
