using System.Buffers.Binary;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Core.Tests.Ingestion;

/// <summary>Ingestion through the real embedded store on a SQLite file in a fresh directory; only the clock is faked.</summary>
public sealed class IngestionServiceTests : IAsyncLifetime, IAsyncDisposable
{
    private const string TenantId = "acme";
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-ingestion-").FullName;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 11, 26, 10, 0, 0, TimeSpan.Zero).AddTicks(1_234_567));
    private SqliteStore? _store;

    private SqliteStore Store => _store ?? throw new InvalidOperationException("The store is not open.");

    public async Task InitializeAsync()
    {
        _store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        var tenant = new Tenant(TenantId, "Acme", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, _clock.GetUtcNow());
        Assert.True(await Store.TryCreateTenantAsync(tenant, CancellationToken.None));
    }

    public async Task DisposeAsync()
    {
        if (_store is { } store)
        {
            _store = null;
            await store.DisposeAsync();
        }

        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    // xUnit 2 disposes test classes through IAsyncLifetime; this only tells analyzers the store is owned and released.
    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());

    [Fact]
    public async Task Assigns_a_uuid_v7_from_the_injected_clock_when_the_event_has_no_id()
    {
        var service = new IngestionService(Store, _clock);

        var appended = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(), Draft()], null, CancellationToken.None));

        Assert.False(appended.Replayed);
        Assert.Equal(2, appended.Receipts.Count);
        Assert.NotEqual(appended.Receipts[0].Id, appended.Receipts[1].Id);
        foreach (var receipt in appended.Receipts)
        {
            Assert.Equal(7, receipt.Id.Version);
            var bytes = receipt.Id.ToByteArray(bigEndian: true);
            Assert.Equal(0x80, bytes[8] & 0xC0); // RFC 9562 variant 10xx
            var unixMilliseconds = (long)(BinaryPrimitives.ReadUInt64BigEndian(bytes) >> 16);
            Assert.Equal(_clock.GetUtcNow().ToUnixTimeMilliseconds(), unixMilliseconds);

            var entry = await Store.FindEventAsync(TenantId, receipt.Id, CancellationToken.None);
            Assert.NotNull(entry);
            Assert.Equal(receipt.Index, entry.Index);
            using var leaf = JsonDocument.Parse(entry.Leaf);
            Assert.Equal(receipt.Id.ToString("D"), leaf.RootElement.GetProperty("id").GetString());
        }
    }

    [Fact]
    public async Task Keeps_a_client_assigned_id()
    {
        var service = new IngestionService(Store, _clock);
        var id = Guid.Parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");

        var appended = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(id)], null, CancellationToken.None));

        var receipt = Assert.Single(appended.Receipts);
        Assert.Equal(id, receipt.Id);
        var entry = await Store.FindEventAsync(TenantId, id, CancellationToken.None);
        Assert.NotNull(entry);
        using var leaf = JsonDocument.Parse(entry.Leaf);
        Assert.Equal("6ba7b810-9dad-11d1-80b4-00c04fd430c8", leaf.RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Uses_the_injected_clock_for_the_receive_time_of_every_event_of_a_request()
    {
        var service = new IngestionService(Store, _clock);
        var first = _clock.GetUtcNow();

        var one = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(), Draft()], null, CancellationToken.None));
        _clock.Advance(TimeSpan.FromHours(3));
        var two = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft()], null, CancellationToken.None));

        foreach (var (receipt, expected) in one.Receipts.Select(r => (r, first)).Append((two.Receipts[0], first.AddHours(3))))
        {
            var entry = await Store.GetEntryAsync(TenantId, receipt.Index, CancellationToken.None);
            Assert.NotNull(entry);
            Assert.Equal(expected, entry.ReceivedAt);
            using var leaf = JsonDocument.Parse(entry.Leaf);
            Assert.Equal(LeafWriter.FormatTimestamp(expected), leaf.RootElement.GetProperty("receivedAt").GetString());
        }
    }

    [Fact]
    public async Task Stores_the_canonical_leaf_of_the_completed_event_and_its_leaf_hash()
    {
        var service = new IngestionService(Store, _clock);
        var draft = Draft(Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"), """ "targets":[{"type":"document","id":"d-1"}],"outcome":"success","data":{"b":2,"a":1} """);

        var receipt = Assert.Single(Assert.IsType<Appended>(await service.AppendAsync(TenantId, [draft], null, CancellationToken.None)).Receipts);

        var expectedLeaf = LeafWriter.ToLeaf(new AuditEvent(
            draft.Id!.Value, draft.Type, draft.OccurredAt, _clock.GetUtcNow(), draft.Actor, draft.Action, draft.Targets, draft.Outcome, draft.Context, draft.Data));
        var entry = await Store.GetEntryAsync(TenantId, receipt.Index, CancellationToken.None);
        Assert.NotNull(entry);
        Assert.Equal(expectedLeaf, entry.Leaf);
        Assert.Equal(MerkleHasher.HashLeaf(expectedLeaf), receipt.LeafHash);
        Assert.Equal(receipt.LeafHash, entry.LeafHash);
    }

    [Fact]
    public async Task Replays_a_re_sent_client_event_even_when_it_is_received_later()
    {
        var service = new IngestionService(Store, _clock);
        var draft = Draft(Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"));
        var firstReceivedAt = _clock.GetUtcNow();

        var first = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [draft], null, CancellationToken.None));
        _clock.Advance(TimeSpan.FromMinutes(10));
        var again = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [draft], null, CancellationToken.None));

        Assert.True(again.Replayed);
        Assert.Equal(first.Receipts, again.Receipts);
        var head = await Store.GetTreeHeadAsync(TenantId, CancellationToken.None);
        Assert.Equal(1UL, head!.Size);
        var entry = await Store.GetEntryAsync(TenantId, 0, CancellationToken.None);
        Assert.Equal(firstReceivedAt, entry!.ReceivedAt);
    }

    [Fact]
    public async Task Replays_an_event_re_sent_with_the_id_its_receipt_assigned()
    {
        var service = new IngestionService(Store, _clock);
        var withoutId = Draft();
        var first = Assert.Single(Assert.IsType<Appended>(await service.AppendAsync(TenantId, [withoutId], null, CancellationToken.None)).Receipts);

        // The client retries the same event, now carrying the id the server gave it: the same event, not a new one.
        _clock.Advance(TimeSpan.FromSeconds(30));
        var outcome = await service.AppendAsync(TenantId, [withoutId with { Id = first.Id }], null, CancellationToken.None);

        var again = Assert.IsType<Appended>(outcome);
        Assert.True(again.Replayed);
        Assert.Equal([first], again.Receipts);
        Assert.Equal(1UL, (await Store.GetTreeHeadAsync(TenantId, CancellationToken.None))!.Size);
    }

    [Fact]
    public async Task Refuses_a_different_event_under_a_used_client_id()
    {
        var service = new IngestionService(Store, _clock);
        var id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
        Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(id)], null, CancellationToken.None));

        var outcome = await service.AppendAsync(TenantId, [Draft(), Draft(id, "\"outcome\":\"failure\"")], null, CancellationToken.None);

        Assert.Equal(new EventIdConflict(id, 1), outcome);
        Assert.Equal(1UL, (await Store.GetTreeHeadAsync(TenantId, CancellationToken.None))!.Size);
    }

    [Fact]
    public async Task Gives_events_without_an_id_a_fresh_id_on_every_send()
    {
        var service = new IngestionService(Store, _clock);
        var draft = Draft();

        var first = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [draft], null, CancellationToken.None));
        var second = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [draft], null, CancellationToken.None));

        Assert.False(second.Replayed);
        Assert.NotEqual(first.Receipts[0].Id, second.Receipts[0].Id);
        Assert.Equal([0UL, 1UL], first.Receipts.Concat(second.Receipts).Select(r => r.Index));
    }

    [Fact]
    public async Task Replays_receipts_for_a_reused_idempotency_claim_without_new_ids()
    {
        var service = new IngestionService(Store, _clock);
        var claim = new IdempotencyClaim("request-1", Hash.Sha256("body"u8));

        var first = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(), Draft()], claim, CancellationToken.None));
        var again = Assert.IsType<Appended>(await service.AppendAsync(TenantId, [Draft(), Draft()], claim, CancellationToken.None));

        Assert.True(again.Replayed);
        Assert.Equal(first.Receipts, again.Receipts);
        Assert.Equal(2UL, (await Store.GetTreeHeadAsync(TenantId, CancellationToken.None))!.Size);
    }

    private static EventDraft Draft(Guid? id = null, string? extraMembers = null)
    {
        var json = "{" + (id is null ? "" : $"\"id\":\"{id:D}\",")
            + "\"type\":\"user.login\",\"occurredAt\":\"2026-11-26T09:59:58.5+01:00\",\"actor\":{\"type\":\"user\",\"id\":\"u-1\",\"name\":\"Ada\"},"
            + "\"action\":\"user.login\",\"context\":{\"ip\":\"192.0.2.10\"}"
            + (extraMembers is null ? "" : "," + extraMembers.Trim())
            + "}";
        var errors = new List<EventError>();
        var draft = EventReader.Read(JsonSerializer.Deserialize<JsonElement>(json), 0, errors);
        Assert.Empty(errors);
        return draft!;
    }
}
