using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// The storage contract every engine must meet, written only against <see cref="ITenantStore"/> and
/// <see cref="ILogStore"/>. An engine's test class derives from this and says how to open a store on fresh storage
/// and how to remove that storage afterwards; nothing here may know which engine runs.
/// </summary>
/// <remarks>
/// Each test gets a new instance, hence new empty storage. The only fake is the clock handed to the store (it stamps
/// Idempotency-Keys); times are whole milliseconds so every engine can store them exactly.
/// </remarks>
public abstract partial class LogStoreContract<TStore> : IAsyncLifetime, IAsyncDisposable
    where TStore : class, ITenantStore, ILogStore, Atp.Core.Query.IEventQueryStore, Atp.Core.Schemas.ISchemaStore, Atp.Core.Classification.IDataKeyStore, Atp.Core.Holds.ILegalHoldStore, Atp.Core.Erasure.IErasureRequestStore, IAsyncDisposable
{
    protected const string TenantA = "tenant-a";
    protected const string TenantB = "tenant-b";
    protected const string TenantC = "tenant-c";

    private static readonly CancellationToken None = CancellationToken.None;
    private TStore? _store;
    private int _payloads;

    protected ManualClock Clock { get; } = new(new DateTimeOffset(2026, 11, 26, 10, 0, 0, TimeSpan.Zero));

    protected TStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    /// <summary>Opens the engine on this test's storage: empty on the first call, the same storage on later calls.</summary>
    protected abstract Task<TStore> OpenStoreAsync(TimeProvider clock);

    /// <summary>Removes this test's storage; called once, after the last store is disposed.</summary>
    protected abstract Task DeleteStorageAsync();

    /// <summary>Puts an outbox row for entries [first, last] of the tenant back, as a crash between projecting and deleting it would.</summary>
    protected abstract Task RedeliverOutboxAsync(string tenantId, ulong first, ulong last);

    /// <summary>Deletes the tenant's read-model rows behind the store's back (the projection status stays).</summary>
    protected abstract Task WipeReadModelsAsync();

    /// <summary>Flips the lowest bit of a stored Merkle node of level ≥ 1 (the copy kept with the leaf row that completed it).</summary>
    protected abstract Task FlipNodeBitAsync(string tenantId, NodeId node);

    /// <summary>Flips the lowest bit of the first byte of the tenant's stored tree head root.</summary>
    protected abstract Task AlterHeadRootAsync(string tenantId);

    public async Task InitializeAsync() => _store = await OpenStoreAsync(Clock);

    public async Task DisposeAsync()
    {
        if (_store is { } store)
        {
            _store = null;
            await store.DisposeAsync();
        }

        await DeleteStorageAsync();
    }

    // xUnit 2 disposes test classes through IAsyncLifetime; this only tells analyzers the store is owned and released.
    ValueTask IAsyncDisposable.DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return new(DisposeAsync());
    }

    /// <summary>A restart: the store is closed and a new one opened on the same storage.</summary>
    protected async Task ReopenAsync()
    {
        var old = Store;
        _store = null;
        await old.DisposeAsync();
        _store = await OpenStoreAsync(Clock);
    }

    /// <summary>A restart with <paramref name="whileStopped"/> done to the storage in between, as an operator or a fault would.</summary>
    protected async Task RestartAsync(Func<Task> whileStopped)
    {
        ArgumentNullException.ThrowIfNull(whileStopped);
        var old = Store;
        _store = null;
        await old.DisposeAsync();
        await whileStopped();
        _store = await OpenStoreAsync(Clock);
    }

    protected static Tenant NewTenant(string id) =>
        new(id, $"Tenant {id}", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active,
            new DateTimeOffset(2026, 11, 1, 8, 30, 0, 125, TimeSpan.Zero));

    protected async Task CreateTenantsAsync(params string[] ids)
    {
        foreach (var id in ids)
        {
            Assert.True(await Store.TryCreateTenantAsync(NewTenant(id), None), $"tenant {id} was not created");
        }
    }

    /// <summary>A new entry with unique leaf bytes, received now.</summary>
    protected PendingEntry NewEntry(Guid? clientId = null) =>
        TestEntries.Create($"event-{Interlocked.Increment(ref _payloads)}", Clock.GetUtcNow(), clientId);

    protected PendingEntry[] NewEntries(int count) => Enumerable.Range(0, count).Select(_ => NewEntry()).ToArray();

    protected Task<AppendOutcome> AppendAsync(string tenantId, IReadOnlyList<PendingEntry> entries, IdempotencyClaim? claim = null) =>
        Store.AppendAsync(new AppendRequest(tenantId, entries, claim), None);

    /// <summary>Appends and requires the outcome to be a fresh (not replayed) append.</summary>
    protected async Task<IReadOnlyList<Receipt>> AppendNewAsync(string tenantId, params PendingEntry[] entries)
    {
        var appended = Assert.IsType<Appended>(await AppendAsync(tenantId, entries));
        Assert.False(appended.Replayed);
        return appended.Receipts;
    }

    protected async Task<TreeHead> HeadAsync(string tenantId) =>
        await Store.GetTreeHeadAsync(tenantId, None) ?? throw new InvalidOperationException($"Tenant '{tenantId}' has no tree head.");

    protected Task<IReadOnlyList<LogEntry>> AllEntriesAsync(string tenantId) => Store.ListEntriesAsync(tenantId, 0, int.MaxValue, None);

    protected static void AssertStored(PendingEntry expected, ulong index, LogEntry? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(index, actual.Index);
        Assert.Equal(expected.EventId, actual.EventId);
        Assert.Equal(expected.Leaf, actual.Leaf);
        Assert.Equal(expected.LeafHash, actual.LeafHash);
        Assert.Equal(expected.ReceivedAt, actual.ReceivedAt);
    }

    protected static ApiKey NewApiKey(string id, string? tenantId, params string[] scopes) =>
        new(id, tenantId, $"key {id}", scopes, ApiKeyFormat.Hash(ApiKeyFormat.Generate()), new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));

    protected static Hash RootOf(IEnumerable<PendingEntry> entries) => ReferenceMerkle.Root(entries.Select(e => e.Leaf).ToList());
}
