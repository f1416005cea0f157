using System.Text;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// No single entry may stall projection: an entry the read models cannot hold is set aside as a dead letter, and its
/// log, and every other tenant's, go on. The projected size names only a prefix every entry of which was handled.
/// </summary>
public abstract partial class LogStoreContract<TStore>
{
    // A leaf as the log would hold it, with the given bytes (the log stores whatever it is given; only the read models parse).
    private PendingEntry RawLeaf(string json)
    {
        var leaf = Encoding.UTF8.GetBytes(json);
        return new PendingEntry(Guid.CreateVersion7(), false, leaf, MerkleHasher.HashLeaf(leaf), null, Clock.GetUtcNow());
    }

    private async Task ProjectAllAsync()
    {
        for (var turn = 0; turn < 10 && await Store.OldestUnprojectedAsync(None) is not null; turn++)
        {
            await Store.ProjectPendingAsync(1000, None);
        }

        Assert.Null(await Store.OldestUnprojectedAsync(None));
    }

    [Fact]
    public async Task An_entry_that_cannot_be_projected_becomes_a_dead_letter_and_every_log_goes_on()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await AppendEventsAsync("document.read");
        await AppendNewAsync(TenantA, RawLeaf("{\"action\":\"document.read\",\"actor\":{\"id\":\"secret-in-the-leaf\""));
        await AppendEventsAsync("document.update");
        await AppendNewAsync(TenantB, NewEntries(1));
        await ProjectAllAsync();

        var status = await Store.GetProjectionStatusAsync(TenantA, None);
        Assert.Equal(new ProjectionStatus(3, 3) { DeadLetters = 1 }, status);
        Assert.Equal([0UL, 2UL], (await SearchAsync()).Hits.Select(h => h.Entry.Index).Order());
        var letter = Assert.Single(await Store.ListDeadLettersAsync(TenantA, 100, None));
        Assert.Equal(1UL, letter.Index);
        Assert.Equal(1, letter.Attempts);
        Assert.Equal(Clock.GetUtcNow(), letter.FirstSeen);
        Assert.DoesNotContain("secret", letter.Error, StringComparison.Ordinal);
        // The other tenant's log was projected too (its entry is not an event, so it is a dead letter of its own).
        Assert.Equal(new ProjectionStatus(1, 1) { DeadLetters = 1 }, await Store.GetProjectionStatusAsync(TenantB, None));
        Assert.Equal(2, await Store.CountDeadLettersAsync(None));
        Assert.Empty(await Store.ListDeadLettersAsync(TenantC, 100, None));

        // A retry cannot fix the bytes: the letter stays, with one more attempt.
        Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, await Store.RetryDeadLettersAsync(TenantA, None));
        letter = Assert.Single(await Store.ListDeadLettersAsync(TenantA, 100, None));
        Assert.Equal(2, letter.Attempts);
        Assert.Equal(Clock.GetUtcNow(), letter.LastSeen);

        // A rebuild sets it aside again, once.
        Assert.Equal(3UL, await Store.RebuildProjectionsAsync(TenantA, None));
        Assert.Equal(1, Assert.Single(await Store.ListDeadLettersAsync(TenantA, 100, None)).Attempts);
        Assert.Equal(2, (await SearchAsync()).Hits.Count);
    }

    [Fact]
    public async Task An_entry_holding_U0000_never_stalls_projection()
    {
        await CreateTenantsAsync(TenantA);
        await AppendEventsAsync("document.read");
        await AppendNewAsync(TenantA, RawLeaf(
            "{\"action\":\"user.login\",\"actor\":{\"id\":\"oidc-sub-\\u0000-x\",\"type\":\"user\"},\"occurredAt\":\"2026-11-26T10:00:00Z\",\"outcome\":\"success\",\"type\":\"atp.security.v1\"}"));
        await AppendEventsAsync("document.update");
        await ProjectAllAsync();

        // Searchable where the engine can hold U+0000 (SQLite), a dead letter where it cannot (PostgreSQL): handled either way.
        var status = (await Store.GetProjectionStatusAsync(TenantA, None))!;
        Assert.Equal(3UL, status.ProjectedSize);
        Assert.Equal(3, (await SearchAsync()).Hits.Count + status.DeadLetters);
        Assert.Single((await SearchAsync("document.update")).Hits);
    }

    [Fact]
    public async Task The_projected_size_never_claims_an_entry_that_was_not_handled()
    {
        await CreateTenantsAsync(TenantA);
        await AppendEventsAsync("document.read", "document.update", "user.login");
        await ProjectAllAsync();
        await WipeReadModelsAsync();

        // Only the end of the log comes back first (as after a restart that re-queues the start behind a newer row).
        await RedeliverOutboxAsync(TenantA, 2, 2);
        await Store.ProjectPendingAsync(1000, None);
        var status = (await Store.GetProjectionStatusAsync(TenantA, None))!;
        var searchable = (await SearchAsync()).Hits.Select(h => h.Entry.Index).ToHashSet();
        for (var index = 0UL; index < status.ProjectedSize; index++)
        {
            Assert.Contains(index, searchable);
        }

        await RedeliverOutboxAsync(TenantA, 0, 1);
        await ProjectAllAsync();
        Assert.Equal(new ProjectionStatus(3, 3), await Store.GetProjectionStatusAsync(TenantA, None));
        Assert.Equal(3, (await SearchAsync()).Hits.Count);
    }
}
