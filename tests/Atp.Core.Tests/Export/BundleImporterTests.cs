using Atp.Core.Export;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Core.Tests.Export;

/// <summary>The importer between two real SQLite stores: same roots, idempotent, resumes, refuses gaps and forks.</summary>
public sealed class BundleImporterTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Imports_with_the_same_roots_completes_an_interrupted_import_and_refuses_a_fork_with_nothing_stored()
    {
        await using var source = await BundleLog.CreateAsync();
        await source.AppendAsync(25);
        await source.SealAsync();
        await source.AppendAsync(15);
        await source.SealAsync();
        var writer = new BundleWriter(source.Store, source.Clock);
        var upTo25 = await WriteAsync(source, writer, 0, 25);
        var upTo40 = await WriteAsync(source, writer, 0, 40);

        var replica = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = source.Scratch("replica") }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        await using (replica)
        {
            var importer = new BundleImporter(replica, replica, source.Clock);

            // A first import that stopped at 25 (as a crash part-way through [0, 40) would leave it): the rerun checks
            // the 25 stored entries against the bundle and appends the other 15.
            Assert.Equal(25UL, (await ImportAsync(importer, upTo25)).Appended);
            var completed = await ImportAsync(importer, upTo40);
            Assert.False(completed.Refused, completed.Message);
            Assert.Equal((15UL, 40UL), (completed.Appended, completed.TreeSize));

            Assert.Equal(await source.Store.GetTreeHeadAsync(BundleLog.TenantId, None), await replica.GetTreeHeadAsync(BundleLog.TenantId, None));
            Assert.Equal(await source.Store.GetLatestCheckpointAsync(BundleLog.TenantId, None) is { } latest ? latest.Note : null, (await replica.GetLatestCheckpointAsync(BundleLog.TenantId, None))!.Note);
            Assert.Equal((await source.Store.GetCheckpointAtOrAfterAsync(BundleLog.TenantId, 25, None))!.Note, (await replica.GetCheckpointAtOrAfterAsync(BundleLog.TenantId, 25, None))!.Note);
            var tenant = await replica.GetTenantAsync(BundleLog.TenantId, None);
            Assert.True(tenant!.IsReplica);
            for (ulong index = 0; index < 40; index += 13)
            {
                var original = await source.Store.GetEntryAsync(BundleLog.TenantId, index, None);
                var imported = await replica.GetEntryAsync(BundleLog.TenantId, index, None);
                Assert.Equal((original!.EventId, original.LeafHash), (imported!.EventId, imported.LeafHash));
                Assert.Equal(original.Leaf, imported.Leaf);
                Assert.Equal(original.EventId, (await replica.FindEventAsync(BundleLog.TenantId, original.EventId, None))!.EventId);
            }

            var again = await ImportAsync(importer, upTo40);
            Assert.Equal((false, 0UL), (again.Refused, again.Appended));

            // Another log of the same tenant and origin (a fork) is refused and the replica is unchanged.
            await using var fork = await BundleLog.CreateAsync();
            await fork.AppendAsync(50);
            await fork.SealAsync();
            var forked = await WriteAsync(fork, new BundleWriter(fork.Store, fork.Clock), 0, 50);
            var refused = await ImportAsync(importer, forked);
            Assert.True(refused.Refused);
            Assert.StartsWith("fork: entry 0 of the bundle is not the imported one", refused.Message, StringComparison.Ordinal);
            Assert.Equal(40UL, (await replica.GetTreeHeadAsync(BundleLog.TenantId, None))!.Size);
            Assert.Equal(40UL, (await replica.GetLatestCheckpointAsync(BundleLog.TenantId, None))!.Size);
        }
    }

    [Fact]
    public async Task Refuses_a_bundle_that_starts_past_the_imported_log_and_a_tenant_that_is_not_a_replica()
    {
        await using var source = await BundleLog.CreateAsync();
        await source.AppendAsync(10);
        await source.SealAsync();
        await source.AppendAsync(10);
        await source.SealAsync();
        var day2 = await WriteAsync(source, new BundleWriter(source.Store, source.Clock), 10, 20, previous: 10);

        var replica = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = source.Scratch("replica") }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        await using (replica)
        {
            var importer = new BundleImporter(replica, replica, source.Clock);
            var gap = await ImportAsync(importer, day2);
            Assert.True(gap.Refused);
            Assert.Equal("the bundle starts at index 10 but the imported log has 0 entries: import the bundles in between first", gap.Message);
            Assert.Null(await replica.GetTenantAsync(BundleLog.TenantId, None));

            await replica.TryCreateTenantAsync(new Tenant(BundleLog.TenantId, "Acme", Tenant.DefaultEdition, "local", new Residency(Residency.Strict, []), Tenant.Active, source.Clock.GetUtcNow()), None);
            var own = await ImportAsync(importer, await WriteAsync(source, new BundleWriter(source.Store, source.Clock), 0, 10));
            Assert.True(own.Refused);
            Assert.Contains("is not a replica", own.Message, StringComparison.Ordinal);
            Assert.Equal(0UL, (await replica.GetTreeHeadAsync(BundleLog.TenantId, None))!.Size);
        }
    }

    private static async Task<string> WriteAsync(BundleLog log, BundleWriter writer, ulong from, ulong to, ulong? previous = null)
    {
        var plan = await writer.PlanCompleteAsync(BundleLog.TenantId, from, to, previous, null, None);
        Assert.Equal(to, plan!.TreeSize);
        var path = Path.Combine(log.Scratch("out"), $"{Guid.NewGuid():N}.tar");
        await writer.WriteAsync(plan, log.Scratch($"staging-{Guid.NewGuid():N}"), log.Signer, path, None);
        return path;
    }

    private static async Task<BundleImportResult> ImportAsync(BundleImporter importer, string path)
    {
        await using var stream = File.OpenRead(path);
        var verified = await new BundleVerifier([]).VerifyAsync(stream, null, null, None);
        Assert.True(verified.IsValid, verified.Failure?.ToString());
        stream.Position = 0;
        return await importer.ImportAsync(stream, verified.Manifest!, "local", None);
    }
}
