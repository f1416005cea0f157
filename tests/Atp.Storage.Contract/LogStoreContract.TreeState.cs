using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// Never sign a fork: the tree state loaded at start is checked against the stored head (a mismatch quarantines the
/// tenant's log), and <see cref="SignableHead"/> refuses a head that is not provably consistent with the last signed
/// checkpoint. The damage is done behind the store's back, as a flipped bit on disk would be.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    private const string Origin = "atp.test/contract-cell-1";

    [Fact]
    public async Task A_flipped_edge_node_quarantines_the_log_on_its_first_append_after_restart()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await AppendNewAsync(TenantA, NewEntries(6));
        await AppendNewAsync(TenantB, NewEntries(3));
        var headA = await HeadAsync(TenantA);

        // Size 6: the edge is node (level 2, index 0), kept with leaf 3, and node (level 1, index 2).
        await RestartAsync(() => FlipNodeBitAsync(TenantA, CompactRange.EdgeNodes(6)[0]));

        // Both tenants at once, so they may share a group commit: only A's request is refused.
        var toA = AppendAsync(TenantA, NewEntries(2));
        var toB = AppendAsync(TenantB, NewEntries(2));
        var refused = await Assert.ThrowsAsync<LogQuarantinedException>(() => toA);
        Assert.Equal(TenantA, refused.TenantId);
        Assert.False(Assert.IsType<Appended>(await toB).Replayed);

        var quarantined = Assert.Single(Store.Quarantine.List());
        Assert.Equal(TenantA, quarantined.TenantId);
        Assert.Equal(TreeStateCheck.Load, quarantined.Check);
        Assert.Contains("root", quarantined.Detail, StringComparison.Ordinal);
        Assert.True(Store.Quarantine.Raised.TryRead(out var raised));
        Assert.Equal(quarantined, raised);

        // Refused for good (until a restart on a repaired store), and nothing of it stored.
        await Assert.ThrowsAsync<LogQuarantinedException>(() => AppendAsync(TenantA, NewEntries(1)));
        Assert.False(Store.Quarantine.Raised.TryRead(out _));
        Assert.Equal(headA, await HeadAsync(TenantA));
        Assert.Equal(6, (await AllEntriesAsync(TenantA)).Count);

        await AppendNewAsync(TenantB, NewEntries(1));
        Assert.Equal(6UL, (await HeadAsync(TenantB)).Size);
        Assert.False(Store.Quarantine.Contains(TenantB));
    }

    [Fact]
    public async Task An_intact_log_is_not_quarantined_after_restart()
    {
        await CreateTenantsAsync(TenantA);
        var entries = NewEntries(6);
        await AppendNewAsync(TenantA, entries);

        await RestartAsync(() => Task.CompletedTask);
        var more = NewEntries(3);
        await AppendNewAsync(TenantA, more);

        Assert.Empty(Store.Quarantine.List());
        Assert.Equal(RootOf([.. entries, .. more]), (await HeadAsync(TenantA)).Root);
    }

    [Fact]
    public async Task A_head_consistent_with_the_last_signed_checkpoint_may_be_signed()
    {
        using var cell = NoteSigner.Generate(Origin);
        await CreateTenantsAsync(TenantA);
        await AppendNewAsync(TenantA, NewEntries(5));
        AssertSignable(await CheckAsync(TenantA, cell), "first checkpoint");

        await SignHeadAsync(TenantA, cell);
        await AppendNewAsync(TenantA, NewEntries(6));
        AssertSignable(await CheckAsync(TenantA, cell), "checkpoint 5 → head 11");
    }

    [Fact]
    public async Task A_head_whose_root_was_altered_is_never_signed()
    {
        using var cell = NoteSigner.Generate(Origin);
        await CreateTenantsAsync(TenantA, TenantB);
        await AppendNewAsync(TenantA, NewEntries(5));
        await AppendNewAsync(TenantB, NewEntries(5));
        await SignHeadAsync(TenantA, cell);
        await SignHeadAsync(TenantB, cell);
        await AppendNewAsync(TenantA, NewEntries(3));
        await AppendNewAsync(TenantB, NewEntries(3));

        await AlterHeadRootAsync(TenantA);

        var refused = await CheckAsync(TenantA, cell);
        Assert.False(refused.IsValid);
        Assert.Contains("root", refused.Failure, StringComparison.Ordinal);
        AssertSignable(await CheckAsync(TenantB, cell), "the other tenant");
    }

    [Fact]
    public async Task A_head_is_never_signed_when_a_node_of_its_consistency_proof_was_flipped()
    {
        using var cell = NoteSigner.Generate(Origin);
        await CreateTenantsAsync(TenantA);
        await AppendNewAsync(TenantA, NewEntries(5));
        await SignHeadAsync(TenantA, cell);
        await AppendNewAsync(TenantA, NewEntries(3));

        // Head 8 is one perfect subtree (its edge is intact and adds up to the head); the proof from 5 to 8 goes through
        // node (level 2, index 0), which is no longer on the edge — only the consistency proof can see it changed.
        Assert.Equal([new NodeId(3, 0)], CompactRange.EdgeNodes(8));
        await FlipNodeBitAsync(TenantA, new NodeId(2, 0));

        var refused = await CheckAsync(TenantA, cell);
        Assert.False(refused.IsValid);
        Assert.Contains("not consistent with the last signed checkpoint (size 5)", refused.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_last_checkpoint_not_signed_by_the_cell_is_not_built_on()
    {
        using var cell = NoteSigner.Generate(Origin);
        using var stranger = NoteSigner.Generate(Origin);
        await CreateTenantsAsync(TenantA);
        await AppendNewAsync(TenantA, NewEntries(4));
        await SignHeadAsync(TenantA, stranger);
        await AppendNewAsync(TenantA, NewEntries(2));

        var refused = await CheckAsync(TenantA, cell);
        Assert.False(refused.IsValid);
        Assert.Contains("does not verify under the cell's keys", refused.Failure, StringComparison.Ordinal);
    }

    private async Task<VerifyResult> CheckAsync(string tenantId, NoteSigner cell) =>
        await SignableHead.CheckAsync(Store, tenantId, await HeadAsync(tenantId), [cell.Verifier], None);

    private async Task SignHeadAsync(string tenantId, NoteSigner signer)
    {
        var head = await HeadAsync(tenantId);
        var note = new Checkpoint($"{Origin}/{tenantId}", head.Size, head.Root).Sign(signer).ToString();
        await Store.SaveCheckpointAsync(tenantId, head.Size, note, Clock.GetUtcNow(), None);
    }

    private static void AssertSignable(VerifyResult result, string what) => Assert.True(result.IsValid, $"{what}: {result.Failure}");
}
