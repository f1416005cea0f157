using Atp.Core.Erasure;

namespace Atp.Storage.Contract;

/// <summary>
/// Erasure requests awaiting approval: stored with every member, listed newest first (by state when asked), closed
/// once with the subject overwritten, an approved one's outcome recorded once, the pending ones bounded, one tenant at a time.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    private static readonly DateTimeOffset RequestTime = new(2026, 12, 7, 9, 0, 0, TimeSpan.Zero);

    private static ErasureApprovalRequest ErasureRequest(string tenantId, string id, int minute) =>
        new(id, tenantId, $"subject-of-{id}", $"key-of-{id}", $"GDPR request {id}", "alice@example.com", RequestTime.AddMinutes(minute), RequestTime.AddMinutes(minute).AddDays(7));

    [Fact]
    public async Task Stores_an_erasure_request_with_every_member_and_reads_it_back()
    {
        await CreateTenantsAsync(TenantA);
        var request = ErasureRequest(TenantA, "era-1", 0);
        Assert.True(await Store.CreateErasureRequestAsync(request, 1000, None));

        var read = await Store.GetErasureRequestAsync(TenantA, "era-1", None);
        Assert.Equal(request, read);
        Assert.Equal(ErasureApprovalRequest.Pending, read!.State);
        Assert.Equal("subject-of-era-1", read.Subject);
        Assert.Null(await Store.GetErasureRequestAsync(TenantA, "era-unknown", None));
    }

    [Fact]
    public async Task Lists_erasure_requests_newest_first_and_by_state()
    {
        await CreateTenantsAsync(TenantA);
        foreach (var (id, minute) in new[] { ("era-old", 0), ("era-mid", 1), ("era-new", 2) })
        {
            Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, id, minute), 1000, None));
        }

        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-mid", ErasureApprovalRequest.Rejected, "bob@example.com", "not verified", RequestTime.AddHours(1), None));

        Assert.Equal(["era-new", "era-mid", "era-old"], (await Store.ListErasureRequestsAsync(TenantA, null, 100, None)).Select(r => r.Id));
        Assert.Equal(["era-new", "era-old"], (await Store.ListErasureRequestsAsync(TenantA, ErasureApprovalRequest.Pending, 100, None)).Select(r => r.Id));
        Assert.Equal(["era-mid"], (await Store.ListErasureRequestsAsync(TenantA, ErasureApprovalRequest.Rejected, 100, None)).Select(r => r.Id));
        Assert.Equal(["era-new"], (await Store.ListErasureRequestsAsync(TenantA, null, 1, None)).Select(r => r.Id));
    }

    [Fact]
    public async Task Closing_an_erasure_request_overwrites_its_subject_and_happens_once()
    {
        await CreateTenantsAsync(TenantA);
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-1", 0), 1000, None));

        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-1", ErasureApprovalRequest.Approved, "bob@example.com", null, RequestTime.AddHours(1), None));
        Assert.False(await Store.CloseErasureRequestAsync(TenantA, "era-1", ErasureApprovalRequest.Approved, "carol@example.com", null, RequestTime.AddHours(2), None));
        Assert.False(await Store.CloseErasureRequestAsync(TenantA, "era-1", ErasureApprovalRequest.Rejected, "carol@example.com", "no", RequestTime.AddHours(2), None));
        Assert.False(await Store.CloseErasureRequestAsync(TenantA, "era-unknown", ErasureApprovalRequest.Approved, "bob@example.com", null, RequestTime.AddHours(1), None));

        var read = await Store.GetErasureRequestAsync(TenantA, "era-1", None);
        Assert.Equal(
            ErasureRequest(TenantA, "era-1", 0) with { Subject = null, State = ErasureApprovalRequest.Approved, ClosedBy = "bob@example.com", ClosedAt = RequestTime.AddHours(1) },
            read);

        // Rejected and expired requests keep no subject either.
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-2", 1), 1000, None));
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-3", 2), 1000, None));
        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-2", ErasureApprovalRequest.Rejected, "bob@example.com", "not verified", RequestTime.AddHours(1), None));
        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-3", ErasureApprovalRequest.Expired, null, null, RequestTime.AddDays(8), None));
        Assert.All(await Store.ListErasureRequestsAsync(TenantA, null, 100, None), r => Assert.Null(r.Subject));
        Assert.Equal("not verified", (await Store.GetErasureRequestAsync(TenantA, "era-2", None))!.CloseReason);
    }

    [Fact]
    public async Task An_approved_erasure_requests_outcome_is_recorded_once()
    {
        await CreateTenantsAsync(TenantA);
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-done", 0), 1000, None));
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-failed", 1), 1000, None));

        // Not approved yet: no outcome can be recorded.
        Assert.False(await Store.RecordErasureOutcomeAsync(TenantA, "era-done", 42, null, None));

        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-done", ErasureApprovalRequest.Approved, "bob@example.com", null, RequestTime.AddHours(1), None));
        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-failed", ErasureApprovalRequest.Approved, "bob@example.com", null, RequestTime.AddHours(1), None));
        Assert.True(await Store.RecordErasureOutcomeAsync(TenantA, "era-done", 42, null, None));
        Assert.True(await Store.RecordErasureOutcomeAsync(TenantA, "era-failed", null, "legal-hold: hold_1", None));
        Assert.False(await Store.RecordErasureOutcomeAsync(TenantA, "era-done", 43, null, None));
        Assert.False(await Store.RecordErasureOutcomeAsync(TenantA, "era-failed", 44, null, None));

        var done = await Store.GetErasureRequestAsync(TenantA, "era-done", None);
        Assert.Equal((ErasureApprovalRequest.Approved, 42UL, (string?)null), (done!.State, done.TombstoneIndex!.Value, done.CloseReason));
        var failed = await Store.GetErasureRequestAsync(TenantA, "era-failed", None);
        Assert.Equal((ErasureApprovalRequest.Failed, (ulong?)null, "legal-hold: hold_1"), (failed!.State, failed.TombstoneIndex, failed.CloseReason));
    }

    [Fact]
    public async Task Pending_erasure_requests_are_bounded_per_tenant_counting_only_unexpired_ones()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-1", 0), 2, None));
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-2", 1), 2, None));
        Assert.False(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-3", 2), 2, None));
        Assert.Null(await Store.GetErasureRequestAsync(TenantA, "era-3", None));

        // Another tenant's pending requests do not count; a closed one frees its place.
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantB, "era-1", 0), 2, None));
        Assert.True(await Store.CloseErasureRequestAsync(TenantA, "era-1", ErasureApprovalRequest.Rejected, "bob@example.com", "no", RequestTime.AddHours(1), None));
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-3", 2), 2, None));

        // A pending request past its expiry (not yet recorded as expired) does not hold a place.
        var late = ErasureRequest(TenantA, "era-4", 0) with { CreatedAt = RequestTime.AddDays(7).AddMinutes(2), ExpiresAt = RequestTime.AddDays(14) };
        Assert.True(await Store.CreateErasureRequestAsync(late, 2, None));
    }

    [Fact]
    public async Task Another_tenant_neither_sees_nor_closes_an_erasure_request()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantA, "era-1", 0), 1000, None));

        Assert.Null(await Store.GetErasureRequestAsync(TenantB, "era-1", None));
        Assert.Empty(await Store.ListErasureRequestsAsync(TenantB, null, 100, None));
        Assert.False(await Store.CloseErasureRequestAsync(TenantB, "era-1", ErasureApprovalRequest.Approved, "intruder", null, RequestTime.AddHours(1), None));
        Assert.Equal(ErasureApprovalRequest.Pending, (await Store.GetErasureRequestAsync(TenantA, "era-1", None))!.State);
        Assert.Equal("subject-of-era-1", (await Store.GetErasureRequestAsync(TenantA, "era-1", None))!.Subject);

        // The same id in another tenant is another request.
        Assert.True(await Store.CreateErasureRequestAsync(ErasureRequest(TenantB, "era-1", 5), 1000, None));
        Assert.True(await Store.CloseErasureRequestAsync(TenantB, "era-1", ErasureApprovalRequest.Rejected, "bob@example.com", "no", RequestTime.AddHours(1), None));
        Assert.Equal(ErasureApprovalRequest.Pending, (await Store.GetErasureRequestAsync(TenantA, "era-1", None))!.State);
        Assert.Equal(TenantB, (await Store.GetErasureRequestAsync(TenantB, "era-1", None))!.TenantId);
    }
}
