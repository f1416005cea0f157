namespace Atp.Storage.Sqlite.Tests;

/// <summary>
/// Every connection the store opens is its holder's alone. Microsoft.Data.Sqlite before 10.0.15 could lend one pooled
/// native handle to two concurrent openers (dotnet/efcore#39008): the second owner's statements then ran on the first
/// one's handle, inside its transaction, and its errors read "SQLite Error 1: 'not an error'". Waves of concurrent opens
/// through the store's own <see cref="SqliteConnections"/>, each owner held open until all handles were compared.
/// </summary>
public sealed class ConnectionPoolTests : IDisposable
{
    private const int Openers = 16;

    // The race needs two openers inside a few instructions of each other: with 10.0.0, at a load average of 5 on 2 cores,
    // 2 of 452 and 4 of 444 waves lent a handle twice in this time; at a load average of 10 it did not show at all.
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(10);

    private readonly string _directory;
    private readonly SqliteConnections _connections;

    public ConnectionPoolTests()
    {
        _directory = Directory.CreateTempSubdirectory("atp-pool-").FullName;
        _connections = new SqliteConnections(Path.Combine(_directory, "atp.db"));
    }

    // Only this file's pool: clearing every pool of the process would reach the other tests' stores.
    public void Dispose()
    {
        _connections.ClearPool();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void Concurrent_opens_never_hand_one_native_connection_to_two_holders()
    {
        var connections = _connections;
        connections.Open().Dispose();
        var shared = 0;
        var waves = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (; clock.Elapsed < Duration; waves++)
        {
            // An emptied pool makes each opener take the path that looks for leaked connections, where the race was.
            connections.ClearPool();
            var holders = new Microsoft.Data.Sqlite.SqliteConnection[Openers];
            using var start = new Barrier(Openers);
            var threads = Enumerable.Range(0, Openers).Select(i => new Thread(() =>
            {
                start.SignalAndWait();
                holders[i] = connections.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            var handles = holders.Select(h => h.Handle!.DangerousGetHandle()).ToHashSet();
            shared += handles.Count < Openers ? 1 : 0;
            foreach (var holder in holders)
            {
                holder.Dispose();
            }
        }

        Assert.True(shared == 0, $"{shared} of {waves} waves of {Openers} concurrent opens handed one native connection to two holders");
    }
}
