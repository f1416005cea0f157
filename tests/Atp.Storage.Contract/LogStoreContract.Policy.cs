using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Tenants;

namespace Atp.Storage.Contract;

/// <summary>Policy versions and proposals: immutable numbered versions, a compare-and-swap on the active one, one tenant at a time.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private static readonly DateTimeOffset PolicyTime = new(2026, 11, 26, 10, 0, 0, TimeSpan.Zero);

    private static PolicyProposal Proposal(string id, int baseVersion, PolicyDocument document) =>
        new(id, baseVersion, document, $"reason of {id}", "person-a", PolicyTime.AddMinutes(1), PolicyTime.AddDays(7));

    private static PolicyVersion Applying(PolicyProposal proposal, string approver = "person-b") =>
        new(proposal.BaseVersion + 1, proposal.Document, proposal.Id, proposal.ProposedBy, approver, PolicyTime.AddMinutes(2));

    private async Task StoreFirstPolicyVersionAsync(string tenantId) =>
        Assert.Equal(PolicyApplyResult.Applied, await Store.ApplyPolicyVersionAsync(tenantId, new PolicyVersion(1, new PolicyDocument(null, null), null, null, null, PolicyTime), None));

    [Fact]
    public async Task Applies_an_approved_proposal_with_its_settings_and_reads_back_every_field()
    {
        await CreateTenantsAsync(TenantA);
        await Store.UpdateTenantSettingsAsync(TenantA, new TenantSettings(null, 7, null), None);
        await StoreFirstPolicyVersionAsync(TenantA);
        var proposal = Proposal("p-1", 1, new PolicyDocument(true, true));
        await Store.CreatePolicyProposalAsync(TenantA, proposal, None);
        Assert.Equal(proposal, await Store.GetPolicyProposalAsync(TenantA, "p-1", None));

        Assert.Equal(PolicyApplyResult.Applied, await Store.ApplyPolicyVersionAsync(TenantA, Applying(proposal), None));

        var versions = await Store.ListPolicyVersionsAsync(TenantA, 100, None);
        Assert.Equal([Applying(proposal), new PolicyVersion(1, new PolicyDocument(null, null), null, null, null, PolicyTime)], versions);
        var applied = await Store.GetPolicyProposalAsync(TenantA, "p-1", None);
        Assert.Equal(proposal with { State = PolicyProposal.Applied, ClosedBy = "person-b", ClosedAt = PolicyTime.AddMinutes(2) }, applied);

        // The document's settings reach the tenant; the settings it does not hold stay as they were.
        var settings = (await Store.GetTenantAsync(TenantA, None))!.Settings;
        Assert.True(settings.RequireSignedRequests);
        Assert.True(settings.RequireRegisteredTypes);
        Assert.Equal(7, settings.IngestPerSecond);
    }

    [Fact]
    public async Task Of_two_concurrent_approvals_over_the_same_version_exactly_one_applies()
    {
        await CreateTenantsAsync(TenantA);
        await StoreFirstPolicyVersionAsync(TenantA);
        var signed = Proposal("p-signed", 1, new PolicyDocument(true, null));
        var typed = Proposal("p-typed", 1, new PolicyDocument(null, true));
        await Store.CreatePolicyProposalAsync(TenantA, signed, None);
        await Store.CreatePolicyProposalAsync(TenantA, typed, None);

        var results = await Task.WhenAll(
            Task.Run(() => Store.ApplyPolicyVersionAsync(TenantA, Applying(signed), None)),
            Task.Run(() => Store.ApplyPolicyVersionAsync(TenantA, Applying(typed), None)));

        Assert.Equal([PolicyApplyResult.Applied, PolicyApplyResult.Stale], results.Order());
        var winner = results[0] == PolicyApplyResult.Applied ? signed : typed;
        var loser = winner == signed ? typed : signed;
        Assert.Equal(winner.Id, (await Store.ListPolicyVersionsAsync(TenantA, 1, None))[0].ProposalId);
        Assert.Equal(PolicyProposal.Pending, (await Store.GetPolicyProposalAsync(TenantA, loser.Id, None))!.State);
        Assert.Equal(PolicyDocument.Of((await Store.GetTenantAsync(TenantA, None))!.Settings), winner.Document);
    }

    [Fact]
    public async Task Refuses_a_version_whose_predecessor_is_missing_or_whose_proposal_is_closed_and_stores_nothing()
    {
        await CreateTenantsAsync(TenantA);
        await StoreFirstPolicyVersionAsync(TenantA);
        var proposal = Proposal("p-1", 1, new PolicyDocument(true, null));
        await Store.CreatePolicyProposalAsync(TenantA, proposal, None);

        Assert.Equal(PolicyApplyResult.Stale, await Store.ApplyPolicyVersionAsync(TenantA, Applying(proposal) with { Version = 3 }, None));
        Assert.Equal(PolicyProposal.Pending, (await Store.GetPolicyProposalAsync(TenantA, "p-1", None))!.State);

        Assert.True(await Store.ClosePolicyProposalAsync(TenantA, "p-1", PolicyProposal.Rejected, "person-c", "not now", PolicyTime.AddMinutes(3), None));
        Assert.False(await Store.ClosePolicyProposalAsync(TenantA, "p-1", PolicyProposal.Expired, null, null, PolicyTime.AddMinutes(4), None));
        Assert.Equal(PolicyApplyResult.NotPending, await Store.ApplyPolicyVersionAsync(TenantA, Applying(proposal), None));

        Assert.Equal(
            proposal with { State = PolicyProposal.Rejected, ClosedBy = "person-c", ClosedAt = PolicyTime.AddMinutes(3), CloseReason = "not now" },
            await Store.GetPolicyProposalAsync(TenantA, "p-1", None));
        Assert.Single(await Store.ListPolicyVersionsAsync(TenantA, 100, None));
        Assert.Null((await Store.GetTenantAsync(TenantA, None))!.Settings.RequireSignedRequests);
    }

    [Fact]
    public async Task Policy_rows_of_one_tenant_are_invisible_and_untouchable_through_another()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await StoreFirstPolicyVersionAsync(TenantA);
        var proposal = Proposal("p-1", 1, new PolicyDocument(true, null));
        await Store.CreatePolicyProposalAsync(TenantA, proposal, None);

        Assert.Empty(await Store.ListPolicyVersionsAsync(TenantB, 100, None));
        Assert.Empty(await Store.ListPolicyProposalsAsync(TenantB, 100, None));
        Assert.Null(await Store.GetPolicyProposalAsync(TenantB, "p-1", None));
        Assert.False(await Store.ClosePolicyProposalAsync(TenantB, "p-1", PolicyProposal.Rejected, "x", null, PolicyTime, None));
        Assert.Equal(PolicyApplyResult.NotPending, await Store.ApplyPolicyVersionAsync(TenantB, Applying(proposal), None));

        Assert.Equal(PolicyProposal.Pending, (await Store.GetPolicyProposalAsync(TenantA, "p-1", None))!.State);
        Assert.Null((await Store.GetTenantAsync(TenantB, None))!.Settings.RequireSignedRequests);
    }

    [Fact]
    public async Task Lists_proposals_newest_first_within_the_limit()
    {
        await CreateTenantsAsync(TenantA);
        for (var i = 0; i < 3; i++)
        {
            await Store.CreatePolicyProposalAsync(TenantA, Proposal($"p-{i}", 1, new PolicyDocument(i % 2 == 0, null)) with { CreatedAt = PolicyTime.AddMinutes(i) }, None);
        }

        Assert.Equal(["p-2", "p-1"], (await Store.ListPolicyProposalsAsync(TenantA, 2, None)).Select(p => p.Id));
    }

    [Fact]
    public async Task Stores_the_owner_of_tenant_and_platform_keys()
    {
        await CreateTenantsAsync(TenantA);
        await Store.CreateApiKeyAsync(NewApiKey("key-owned", TenantA, Scopes.TenantAdmin) with { Owner = "alice@example.com" }, None);
        await Store.CreateApiKeyAsync(NewApiKey("key-unowned", TenantA, Scopes.TenantAdmin), None);
        await Store.CreateApiKeyAsync(NewApiKey("platform-owned", null, Scopes.PlatformAdmin) with { Owner = "bob" }, None);

        Assert.Equal("alice@example.com", (await Store.FindApiKeyByIdAsync("key-owned", None))!.Owner);
        Assert.Null((await Store.FindApiKeyByIdAsync("key-unowned", None))!.Owner);
        Assert.Equal(["alice@example.com", null], (await Store.ListApiKeysAsync(TenantA, None)).OrderBy(k => k.Id, StringComparer.Ordinal).Select(k => k.Owner));
        Assert.Equal("bob", Assert.Single(await Store.ListApiKeysAsync(null, None)).Owner);
    }
}
