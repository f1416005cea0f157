using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The process's one connection for log and read-model writes, lent to the sequencer and the projector in turns.
/// One connection keeps its page cache warm: SQLite drops a connection's whole cache whenever another connection has
/// committed, so two writing connections would each start every transaction cold. And a turn waits on a semaphore,
/// not in SQLite's busy handler, which polls with sleeps of up to 100 ms.
/// </summary>
internal sealed class WriteConnection : IDisposable
{
    // Pages of the hot B-tree edges (log, indexes, FTS segments) stay in memory between turns.
    private const int CacheKibibytes = 64 * 1024;

    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly SqliteConnections _connections;
    private SqliteConnection _connection;

    public WriteConnection(SqliteConnections connections)
    {
        _connections = connections;
        _connection = OpenConnection(connections);
    }

    /// <summary>Waits for the connection; dispose the turn to pass it on. Only the holder may use the connection.</summary>
    public async Task<Turn> TakeAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Turn(this);
    }

    /// <summary>
    /// Closes the connection and opens a new one on the same path (the read models' file after it was moved aside as
    /// damaged). Only the holder of a turn may call this.
    /// </summary>
    public void Reopen()
    {
        _connection.Dispose();
        _connections.ClearPool();
        _connection = OpenConnection(_connections);
    }

    public void Dispose()
    {
        _connection.Dispose();
        _turn.Dispose();
    }

    private static SqliteConnection OpenConnection(SqliteConnections connections)
    {
        var connection = connections.Open();
        using var pragma = connection.CreateCommand();
        // secure_delete=FAST zeroes a deleted row's bytes in its page when the page is written anyway (no extra I/O): an
        // erased subject's data key must not stay readable in the file (docs/classification.md, "Erasure").
        pragma.CommandText = $"PRAGMA cache_size=-{CacheKibibytes}; PRAGMA secure_delete=FAST;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    internal readonly struct Turn(WriteConnection owner) : IDisposable
    {
        public SqliteConnection Connection => owner._connection;

        public void Dispose() => owner._turn.Release();
    }
}
