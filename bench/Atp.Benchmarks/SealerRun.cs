using System.Diagnostics;
using System.Globalization;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Postgres;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/Atp.Benchmarks -- sealer [tenants …]</c>: the cost of one sealer pass over N
/// grown logs (issue 22), per-tenant (<see cref="ILogStore.SealAsync"/>, one durable transaction per log, as the sealer
/// did) against batched (<see cref="ILogStore.SealManyAsync"/> in batches of <see cref="BatchSize"/>, the default of
/// <c>Atp:Integrity:SealBatchSize</c>). N tenants get <see cref="LeavesPerTenant"/> leaves each through the store; then,
/// in each of <see cref="Rounds"/> rounds, every log grows by one leaf before each pass, so each pass seals all N. The
/// signer does what the server's does: the fork check (<see cref="SignableHead"/>, reading the stored nodes and the last
/// checkpoint) and an Ed25519 signature. A pass includes listing the grown logs. The last column is the listing with
/// every log idle (sealed), the cost the sealer pays each interval when nothing grew. SQLite always; PostgreSQL too when
/// ATP_PG_CONNECTION and ATP_PG_ADMIN_CONNECTION are set (<c>eval "$(bench/Atp.LoadTest/postgres.sh start)"</c>).
/// </summary>
internal static class SealerRun
{
    private const int LeavesPerTenant = 3;
    private const int Rounds = 3;
    private const int BatchSize = 512;
    private const int Appenders = 64;
    private const string Origin = "atp.bench/sealer-1";

    public static async Task PrintAsync(TextWriter output, string[] args)
    {
        int[] sizes = args.Length > 0 ? [.. args.Select(a => int.Parse(a, CultureInfo.InvariantCulture))] : [1_000, 10_000];
        output.WriteLine($"| engine | tenants | pass, per-tenant (best of {Rounds}) | checkpoints/s | pass, batched by {BatchSize} (best of {Rounds}) | checkpoints/s | batched ÷ per-tenant | list grown logs, all grown | list grown logs, all idle |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var run = $"{DateTime.UtcNow:HHmmss}";
        foreach (var tenants in sizes)
        {
            var directory = Directory.CreateTempSubdirectory("atp-sealer-run-").FullName;
            try
            {
                var sqlite = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
                await using (sqlite.ConfigureAwait(false))
                {
                    await MeasureAsync(output, "SQLite", sqlite, sqlite, tenants, run).ConfigureAwait(false);
                }
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                Directory.Delete(directory, recursive: true);
            }

            if (Environment.GetEnvironmentVariable("ATP_PG_CONNECTION") is { Length: > 0 } connection
                && Environment.GetEnvironmentVariable("ATP_PG_ADMIN_CONNECTION") is { Length: > 0 } admin)
            {
                var postgres = new PostgresStore(
                    Options.Create(new PostgresStoreOptions { ConnectionString = connection, AdminConnectionString = admin }), TimeProvider.System, NullLogger<PostgresStore>.Instance);
                await using (postgres.ConfigureAwait(false))
                {
                    await MeasureAsync(output, "PostgreSQL", postgres, postgres, tenants, run).ConfigureAwait(false);
                }
            }
        }
    }

    private static async Task MeasureAsync(TextWriter output, string engine, ITenantStore tenantStore, ILogStore store, int count, string run)
    {
        var ids = Enumerable.Range(0, count).Select(i => $"seal-{run}-{count}-{i:D6}").ToArray();
        foreach (var id in ids)
        {
            await tenantStore.TryCreateTenantAsync(
                new Tenant(id, id, Tenant.DefaultEdition, "local", new Residency(Residency.Permitted, []), Tenant.Active, DateTimeOffset.UtcNow), CancellationToken.None).ConfigureAwait(false);
        }

        using var signer = NoteSigner.Generate(Origin);
        await GrowAsync(store, ids, LeavesPerTenant).ConfigureAwait(false);

        // A first batched pass gives every log a checkpoint, so each measured pass checks consistency with the last one.
        await PassAsync(store, signer, batched: true).ConfigureAwait(false);
        var perTenant = TimeSpan.MaxValue;
        var batched = TimeSpan.MaxValue;
        var listGrown = TimeSpan.MaxValue;
        for (var round = 0; round < Rounds; round++)
        {
            await GrowAsync(store, ids, 1).ConfigureAwait(false);
            var listing = Stopwatch.StartNew();
            Require(await store.ListUnsealedAsync(CancellationToken.None).ConfigureAwait(false), count);
            listGrown = Min(listGrown, listing.Elapsed);
            perTenant = Min(perTenant, await PassAsync(store, signer, batched: false).ConfigureAwait(false));
            await GrowAsync(store, ids, 1).ConfigureAwait(false);
            batched = Min(batched, await PassAsync(store, signer, batched: true).ConfigureAwait(false));
        }

        var listIdle = TimeSpan.MaxValue;
        for (var round = 0; round < Rounds; round++)
        {
            var listing = Stopwatch.StartNew();
            Require(await store.ListUnsealedAsync(CancellationToken.None).ConfigureAwait(false), 0);
            listIdle = Min(listIdle, listing.Elapsed);
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {engine} | {count:N0} | {perTenant.TotalMilliseconds:N0} ms | {count / perTenant.TotalSeconds:N0} | {batched.TotalMilliseconds:N0} ms | {count / batched.TotalSeconds:N0} | {perTenant / batched:F1}× | {listGrown.TotalMilliseconds:N1} ms | {listIdle.TotalMilliseconds:N1} ms |"));
    }

    // One sealer pass: list the grown logs, then seal every one; throws unless every log is sealed afterwards.
    private static async Task<TimeSpan> PassAsync(ILogStore store, NoteSigner signer, bool batched)
    {
        var stopwatch = Stopwatch.StartNew();
        var unsealed = await store.ListUnsealedAsync(CancellationToken.None).ConfigureAwait(false);
        var stored = 0;
        var createdAt = DateTimeOffset.UtcNow;
        if (batched)
        {
            foreach (var batch in unsealed.Chunk(BatchSize))
            {
                stored += await store.SealManyAsync([.. batch.Select(l => l.TenantId)], (tenant, head, ct) => SignAsync(store, signer, tenant, head, ct), createdAt, CancellationToken.None).ConfigureAwait(false);
            }
        }
        else
        {
            foreach (var log in unsealed)
            {
                stored += await store.SealAsync(log.TenantId, (head, ct) => SignAsync(store, signer, log.TenantId, head, ct), createdAt, CancellationToken.None).ConfigureAwait(false) ? 1 : 0;
            }
        }

        var elapsed = stopwatch.Elapsed;
        if (stored != unsealed.Count)
        {
            throw new InvalidOperationException($"{stored} of {unsealed.Count} grown logs were sealed.");
        }

        Require(await store.ListUnsealedAsync(CancellationToken.None).ConfigureAwait(false), 0);
        return elapsed;
    }

    private static async Task<string?> SignAsync(ILogStore store, NoteSigner signer, string tenantId, TreeHead head, CancellationToken cancellationToken)
    {
        var check = await SignableHead.CheckAsync(store, tenantId, head, [signer.Verifier], cancellationToken).ConfigureAwait(false);
        return check.IsValid
            ? new Checkpoint($"{Origin}/{tenantId}", head.Size, head.Root).Sign(signer).ToString()
            : throw new InvalidOperationException($"{tenantId}: {check.Failure}");
    }

    // Appends that many leaves to every log, one request per log, from concurrent callers so they share group commits.
    private static async Task GrowAsync(ILogStore store, string[] tenantIds, int leaves)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Appenders).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < tenantIds.Length; i = Interlocked.Increment(ref next))
            {
                var entries = Enumerable.Range(0, leaves).Select(_ => Entry()).ToArray();
                if (await store.AppendAsync(new AppendRequest(tenantIds[i], entries, null), CancellationToken.None).ConfigureAwait(false) is not Appended)
                {
                    throw new InvalidOperationException($"An append to {tenantIds[i]} was not stored.");
                }
            }
        }))).ConfigureAwait(false);
    }

    private static PendingEntry Entry()
    {
        var id = Guid.CreateVersion7();
        var leaf = System.Text.Encoding.UTF8.GetBytes($"{{\"id\":\"{id:D}\",\"type\":\"bench.sealer\"}}");
        return new PendingEntry(id, false, leaf, MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UtcNow);
    }

    private static void Require(IReadOnlyList<UnsealedLog> unsealed, int expected)
    {
        if (unsealed.Count != expected)
        {
            throw new InvalidOperationException($"{unsealed.Count} logs are listed as grown, expected {expected}.");
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
