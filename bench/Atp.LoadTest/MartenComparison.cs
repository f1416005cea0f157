using System.Text.Json;
using JasperFx;
using JasperFx.Events;
using Marten;
using Npgsql;

namespace Atp.LoadTest;

/// <summary>An audit event as a Marten event: the same canonical event ATP stores, as a JSON document.</summary>
internal sealed record AuditEventRecorded(JsonElement Event);

/// <summary>
/// The .NET peer a user would otherwise pick: Marten's event store appending the same events (the canonical leaves
/// ATP stores, as JSON), one stream per tenant, one session and one SaveChanges (one transaction) per batch, in its
/// fastest append mode (Quick), each append holding the stream's lock (AppendExclusive) so that concurrent writers of
/// a tenant are serialised rather than refused. Marten keeps no Merkle tree, signs nothing and has no tenant isolation
/// in the database.
/// </summary>
internal sealed class MartenComparison : IDisposable
{
    private const string Schema = "atp_bench_marten";

    private readonly DocumentStore _store;
    private readonly Guid[] _streams;
    private readonly AuditEventRecorded[][] _events;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _problems = new();

    private MartenComparison(DocumentStore store, Guid[] streams, AuditEventRecorded[][] events)
    {
        _store = store;
        _streams = streams;
        _events = events;
    }

    public static async Task<MartenComparison> CreateAsync(string connectionString, Workload workload, CancellationToken cancellationToken)
    {
        var store = DocumentStore.For(options =>
        {
            options.Connection(connectionString);
            options.DatabaseSchemaName = Schema;
            options.AutoCreateSchemaObjects = AutoCreate.All;
            options.Events.AppendMode = EventAppendMode.Quick;
            options.UseSystemTextJsonForSerialization();
        });
        await store.Advanced.Clean.CompletelyRemoveAllAsync(cancellationToken);
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();

        var events = workload.Tenants
            .Select(t => t.Leaves.Select(leaf => new AuditEventRecorded(JsonDocument.Parse(leaf).RootElement.Clone())).ToArray())
            .ToArray();

        // Streams exist before the clients start, so concurrent first appends do not race to create them.
        var streams = events.Select(_ => Guid.NewGuid()).ToArray();
        await using (var session = store.LightweightSession())
        {
            for (var t = 0; t < streams.Length; t++)
            {
                session.Events.StartStream(streams[t], events[t][0]);
            }

            await session.SaveChangesAsync(cancellationToken);
        }

        return new MartenComparison(store, streams, events);
    }

    public async Task<OpResult> AppendBatchAsync(int tenant, long start, int count, CancellationToken cancellationToken)
    {
        var pool = _events[tenant];
        var batch = new object[count];
        for (var i = 0; i < count; i++)
        {
            batch[i] = pool[(int)((start + i) % pool.Length)];
        }

        try
        {
            // AppendExclusive takes the stream's advisory lock for the transaction, as ATP locks the tenant's tree head:
            // concurrent writers of one tenant queue instead of failing Marten's optimistic version check.
            await using var session = _store.LightweightSession();
            await session.Events.AppendExclusive(_streams[tenant], cancellationToken, batch);
            await session.SaveChangesAsync(cancellationToken);
            return new OpResult(true, count);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or JasperFx.ConcurrencyException or Marten.Exceptions.MartenCommandException)
        {
            if (_problems.Count < 3)
            {
                _problems.Enqueue($"{e.GetType().Name}: {e.Message}");
            }

            return OpResult.Failed;
        }
    }

    public async Task<long> EventCountAsync(CancellationToken cancellationToken)
    {
        await using var session = _store.QuerySession();
        return await session.Events.QueryAllRawEvents().LongCountAsync(cancellationToken);
    }

    /// <summary>The first few failures, for the report.</summary>
    public IReadOnlyCollection<string> Problems => _problems;

    public void Dispose() => _store.Dispose();
}
