using System.Collections.Concurrent;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>Sealing many logs at once (<see cref="ILogStore.SealManyAsync"/>), called through the contract as the sealer calls it.</summary>
public abstract partial class LogStoreContract<TStore>
{
    [Fact]
    public async Task Seals_many_grown_logs_in_one_call_and_signs_each_committed_head_once()
    {
        var tenants = Enumerable.Range(0, 40).Select(i => $"many-{i:D2}").ToArray();
        await CreateTenantsAsync(tenants);
        for (var i = 0; i < tenants.Length; i++)
        {
            // A few tenants keep the empty log: their size-0 head is sealed like any other.
            if (i % 4 != 3)
            {
                await AppendNewAsync(tenants[i], NewEntries(1 + (i % 3)));
            }
        }

        var heads = new Dictionary<string, TreeHead>();
        foreach (var tenant in tenants)
        {
            heads[tenant] = await HeadAsync(tenant);
        }

        var signed = new ConcurrentBag<(string Tenant, TreeHead Head)>();
        var at = Clock.GetUtcNow();
        ILogStore logs = Store;

        var stored = await logs.SealManyAsync(tenants, Sign(signed), at, None);

        Assert.Equal(tenants.Length, stored);
        Assert.Equal(tenants.Order(StringComparer.Ordinal), signed.Select(s => s.Tenant).Order(StringComparer.Ordinal));
        foreach (var (tenant, head) in signed)
        {
            Assert.Equal(heads[tenant], head);
            Assert.Equal(new StoredCheckpoint(head.Size, NoteOf(tenant, head), at), await Store.GetLatestCheckpointAsync(tenant, None));
        }

        Assert.DoesNotContain(await Store.ListUnsealedAsync(None), l => tenants.Contains(l.TenantId));

        // Heads that a checkpoint covers are not signed again; of two that grew, only those two are.
        signed.Clear();
        Assert.Equal(0, await logs.SealManyAsync(tenants, Sign(signed), at, None));
        Assert.Empty(signed);
        await AppendNewAsync(tenants[5], NewEntries(2));
        await AppendNewAsync(tenants[7], NewEntries(1));
        Assert.Equal(2, await logs.SealManyAsync(tenants, Sign(signed), at.AddSeconds(1), None));
        Assert.Equal([tenants[5], tenants[7]], signed.Select(s => s.Tenant).Order(StringComparer.Ordinal));
        Assert.Equal(heads[tenants[5]].Size + 2, (await Store.GetLatestCheckpointAsync(tenants[5], None))!.Size);
        Assert.Equal(heads[tenants[7]].Size + 1, (await Store.GetLatestCheckpointAsync(tenants[7], None))!.Size);
    }

    [Fact]
    public async Task A_head_the_signer_refuses_skips_only_that_tenant()
    {
        await CreateTenantsAsync(TenantA, TenantB, TenantC);
        await AppendNewAsync(TenantA, NewEntries(2));
        await AppendNewAsync(TenantB, NewEntries(3));
        await AppendNewAsync(TenantC, NewEntries(4));
        var signed = new ConcurrentBag<(string Tenant, TreeHead Head)>();
        var sign = Sign(signed);
        ILogStore logs = Store;

        // An unknown tenant has no head: nothing to sign, nothing stored.
        var stored = await logs.SealManyAsync(
            [TenantA, TenantB, "no-such-tenant", TenantC],
            (tenant, head, ct) => tenant == TenantB ? Task.FromResult<string?>(null) : sign(tenant, head, ct),
            Clock.GetUtcNow(), None);

        Assert.Equal(2, stored);
        Assert.Equal([TenantA, TenantC], signed.Select(s => s.Tenant).Order(StringComparer.Ordinal));
        Assert.Equal(2UL, (await Store.GetLatestCheckpointAsync(TenantA, None))!.Size);
        Assert.Null(await Store.GetLatestCheckpointAsync(TenantB, None));
        Assert.Equal(4UL, (await Store.GetLatestCheckpointAsync(TenantC, None))!.Size);
        Assert.Null(await Store.GetLatestCheckpointAsync("no-such-tenant", None));
        var unsealed = Assert.Single(await Store.ListUnsealedAsync(None));
        Assert.Equal(new UnsealedLog(TenantB, await HeadAsync(TenantB)), unsealed);
    }

    [Fact]
    public async Task A_batch_is_stored_in_one_transaction_so_a_failure_before_its_commit_stores_none_of_it()
    {
        await CreateTenantsAsync(TenantA, TenantB, TenantC);
        foreach (var tenant in new[] { TenantA, TenantB, TenantC })
        {
            await AppendNewAsync(tenant, NewEntries(2));
        }

        var signed = new ConcurrentBag<(string Tenant, TreeHead Head)>();
        var sign = Sign(signed);
        ILogStore logs = Store;

        // The signer fails on the last tenant, after the first two were signed: nothing of the batch is stored.
        await Assert.ThrowsAsync<IOException>(() => logs.SealManyAsync(
            [TenantA, TenantB, TenantC],
            (tenant, head, ct) => tenant == TenantC ? throw new IOException("the signing key cannot be read") : sign(tenant, head, ct),
            Clock.GetUtcNow(), None));

        Assert.Equal(2, signed.Count);
        foreach (var tenant in new[] { TenantA, TenantB, TenantC })
        {
            Assert.Null(await Store.GetLatestCheckpointAsync(tenant, None));
        }

        // The next pass seals all three.
        Assert.Equal(3, await logs.SealManyAsync([TenantA, TenantB, TenantC], sign, Clock.GetUtcNow(), None));
        Assert.Empty(await Store.ListUnsealedAsync(None));
    }

    [Fact]
    public async Task Sealing_while_appends_go_on_signs_only_committed_heads_and_never_goes_back()
    {
        var tenants = Enumerable.Range(0, 8).Select(i => $"busy-{i}").ToArray();
        await CreateTenantsAsync(tenants);
        var signed = new ConcurrentBag<(string Tenant, TreeHead Head)>();
        var sign = Sign(signed);
        ILogStore logs = Store;
        var latest = tenants.ToDictionary(t => t, _ => 0UL);

        var appenders = tenants.Select(tenant => Task.Run(async () =>
        {
            for (var round = 0; round < 25; round++)
            {
                await AppendNewAsync(tenant, NewEntries(2));
            }
        })).ToArray();

        // Seal passes over all tenants while the appends run, and one more after they end.
        var passes = 0;
        while (!appenders.All(a => a.IsCompleted) || passes == 0)
        {
            await logs.SealManyAsync(tenants, async (tenant, head, ct) =>
            {
                await Task.Yield(); // let appends land between the read of a head and its commit
                return await sign(tenant, head, ct);
            }, Clock.GetUtcNow(), None);
            passes++;
            foreach (var tenant in tenants)
            {
                var size = (await Store.GetLatestCheckpointAsync(tenant, None))?.Size ?? 0;
                Assert.True(size >= latest[tenant], $"{tenant}'s latest checkpoint went back from {latest[tenant]} to {size}");
                latest[tenant] = size;
            }
        }

        await Task.WhenAll(appenders);
        await logs.SealManyAsync(tenants, sign, Clock.GetUtcNow(), None);

        // Every head signed was a committed one: its root is the root of the stored tree at that size.
        foreach (var (tenant, head) in signed)
        {
            Assert.Equal(head.Root, await new ProofBuilder(Store.NodeReader(tenant)).RootAsync(head.Size, None));
        }

        foreach (var tenant in tenants)
        {
            var head = await HeadAsync(tenant);
            Assert.Equal(50UL, head.Size);
            Assert.Equal(new StoredCheckpoint(head.Size, NoteOf(tenant, head), Clock.GetUtcNow()), await Store.GetLatestCheckpointAsync(tenant, None));
        }
    }

    private static string NoteOf(string tenantId, TreeHead head) => $"{tenantId} {head.Size} {head.Root.ToBase64()}";

    private static Func<string, TreeHead, CancellationToken, Task<string?>> Sign(ConcurrentBag<(string Tenant, TreeHead Head)> signed) =>
        (tenant, head, _) =>
        {
            signed.Add((tenant, head));
            return Task.FromResult<string?>(NoteOf(tenant, head));
        };
}
