using Atp.Core.Holds;

namespace Atp.Storage.Contract;

/// <summary>Legal holds: stored with every member, listed newest first, released once, one tenant at a time.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private static readonly DateTimeOffset HoldTime = new(2026, 12, 7, 9, 0, 0, TimeSpan.Zero);

    private static LegalHold Hold(string tenantId, string id, int minute, HoldScope? scope = null) =>
        new(id, tenantId, scope ?? new HoldScope(null, null, null, null, null), $"matter of {id}", "oidc:https://idp.example#counsel", HoldTime.AddMinutes(minute), null, null);

    // HoldScope's list of types compares by reference, so holds read back are compared member by member.
    private static void AssertSameHold(LegalHold expected, LegalHold? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected with { Scope = actual.Scope }, actual);
        Assert.Equal(expected.Scope with { EventTypes = actual.Scope.EventTypes }, actual.Scope);
        Assert.Equal(expected.Scope.EventTypes ?? [], actual.Scope.EventTypes ?? []);
    }

    [Fact]
    public async Task Stores_a_hold_with_every_scope_member_and_reads_it_back()
    {
        await CreateTenantsAsync(TenantA);
        var scope = new HoldScope(["billing.invoice.v1", "auth.login.v1"], "user-7", "invoice-42", HoldTime.AddDays(-30), HoldTime.AddTicks(1234567));
        var hold = Hold(TenantA, "hold-1", 0, scope);
        await Store.CreateHoldAsync(hold, None);

        var read = await Store.GetHoldAsync(TenantA, "hold-1", None);
        AssertSameHold(hold, read);
        Assert.True(read!.IsActive);
        AssertSameHold(hold, Assert.Single(await Store.ListHoldsAsync(TenantA, includeReleased: false, None)));

        // A scope without members (the whole log) reads back as one, not as empty lists or minimum times.
        await Store.CreateHoldAsync(Hold(TenantA, "hold-2", 1), None);
        AssertSameHold(Hold(TenantA, "hold-2", 1), await Store.GetHoldAsync(TenantA, "hold-2", None));
        Assert.Null(await Store.GetHoldAsync(TenantA, "hold-unknown", None));
    }

    [Fact]
    public async Task Lists_active_holds_newest_first_and_released_ones_only_when_asked()
    {
        await CreateTenantsAsync(TenantA);
        await Store.CreateHoldAsync(Hold(TenantA, "hold-old", 0), None);
        await Store.CreateHoldAsync(Hold(TenantA, "hold-mid", 1), None);
        await Store.CreateHoldAsync(Hold(TenantA, "hold-new", 2), None);

        Assert.True(await Store.ReleaseHoldAsync(TenantA, "hold-mid", "key:releaser", HoldTime.AddHours(1), None));

        Assert.Equal(["hold-new", "hold-old"], (await Store.ListHoldsAsync(TenantA, includeReleased: false, None)).Select(h => h.Id));
        var all = await Store.ListHoldsAsync(TenantA, includeReleased: true, None);
        Assert.Equal(["hold-new", "hold-mid", "hold-old"], all.Select(h => h.Id));
        AssertSameHold(Hold(TenantA, "hold-mid", 1) with { ReleasedAt = HoldTime.AddHours(1), ReleasedBy = "key:releaser" }, all[1]);
        Assert.False(all[1].IsActive);
    }

    [Fact]
    public async Task Releases_a_hold_once_and_keeps_the_first_release()
    {
        await CreateTenantsAsync(TenantA);
        await Store.CreateHoldAsync(Hold(TenantA, "hold-1", 0), None);

        Assert.True(await Store.ReleaseHoldAsync(TenantA, "hold-1", "person-a", HoldTime.AddHours(1), None));
        Assert.False(await Store.ReleaseHoldAsync(TenantA, "hold-1", "person-b", HoldTime.AddHours(2), None));
        Assert.False(await Store.ReleaseHoldAsync(TenantA, "hold-unknown", "person-b", HoldTime.AddHours(2), None));

        var read = await Store.GetHoldAsync(TenantA, "hold-1", None);
        Assert.Equal(HoldTime.AddHours(1), read!.ReleasedAt);
        Assert.Equal("person-a", read.ReleasedBy);
    }

    [Fact]
    public async Task Another_tenant_neither_sees_nor_releases_a_hold()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await Store.CreateHoldAsync(Hold(TenantA, "hold-1", 0), None);

        Assert.Null(await Store.GetHoldAsync(TenantB, "hold-1", None));
        Assert.Empty(await Store.ListHoldsAsync(TenantB, includeReleased: true, None));
        Assert.False(await Store.ReleaseHoldAsync(TenantB, "hold-1", "intruder", HoldTime.AddHours(1), None));
        Assert.True((await Store.GetHoldAsync(TenantA, "hold-1", None))!.IsActive);

        // The same id in another tenant is another hold.
        await Store.CreateHoldAsync(Hold(TenantB, "hold-1", 5), None);
        Assert.True(await Store.ReleaseHoldAsync(TenantB, "hold-1", "person-b", HoldTime.AddHours(1), None));
        Assert.True((await Store.GetHoldAsync(TenantA, "hold-1", None))!.IsActive);
        Assert.Equal(TenantB, (await Store.GetHoldAsync(TenantB, "hold-1", None))!.TenantId);
    }
}
