using System.Collections.Concurrent;
using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Atp.Storage.Postgres.Tests;

/// <summary>What only the scale-out engine promises: migrations and their roles, many nodes on one database, the sealer lock.</summary>
public sealed class PostgresStoreTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly List<PostgresStore> _stores = [];
    private PostgresServer _server = null!;
    private string _database = "";

    private string AppConnectionString => _server.ConnectionString(_database, PostgresServer.AppRole);

    private string OwnerConnectionString => _server.ConnectionString(_database, PostgresServer.OwnerRole);

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.GetAsync();
        _database = await _server.CreateDatabaseAsync(migrated: false);
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        await _server.DropDatabaseAsync(_database);
    }

    [Fact]
    public void Refuses_a_database_without_the_schema_and_says_how_to_create_it()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Open());

        Assert.Contains("atp admin migrate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrates_at_start_with_the_admin_connection_and_again_idempotently()
    {
        var first = Open(admin: true);
        Assert.True(await first.TryCreateTenantAsync(NewTenant("acme"), None));

        // A second node starting with the admin connection, and an explicit migrate: nothing changes, nothing is lost.
        Open(admin: true);
        Assert.Equal(PostgresSchema.CurrentVersion, PostgresStore.Migrate(OwnerConnectionString, PostgresServer.AppRole));

        Assert.Equal((long)PostgresSchema.CurrentVersion, await OwnerScalarAsync("SELECT count(*) FROM atp.schema_version"));
        Assert.NotNull(await first.GetTenantAsync("acme", None));
    }

    [Fact]
    public async Task Refuses_a_schema_newer_than_it_knows_both_to_open_and_to_migrate()
    {
        PostgresStore.Migrate(OwnerConnectionString, PostgresServer.AppRole);
        await OwnerScalarAsync("INSERT INTO atp.schema_version (version) VALUES (99)");

        var open = Assert.Throws<InvalidOperationException>(() => Open());
        var migrate = Assert.Throws<InvalidOperationException>(() => PostgresStore.Migrate(OwnerConnectionString, PostgresServer.AppRole));

        Assert.Contains("newer", open.Message, StringComparison.Ordinal);
        Assert.Contains("newer", migrate.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_to_run_as_a_role_that_row_level_security_does_not_hold()
    {
        PostgresStore.Migrate(OwnerConnectionString, PostgresServer.AppRole);

        var asOwner = Assert.Throws<InvalidOperationException>(() => Open(connectionString: OwnerConnectionString));
        var asSuperuser = Assert.Throws<InvalidOperationException>(() => Open(connectionString: _server.ConnectionString(_database, "postgres")));

        Assert.Contains("bypasses row-level security", asOwner.Message, StringComparison.Ordinal);
        Assert.Contains("bypasses row-level security", asSuperuser.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Freshness_reads_the_receive_time_from_the_outbox_row_and_from_the_entry_for_rows_written_before_version_2()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));
        var first = DateTimeOffset.UnixEpoch.AddDays(3);
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("a", first), TestEntries.Create("b", first.AddSeconds(1))], null), None));
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("c", first.AddSeconds(5))], null), None));

        Assert.Equal(first, await store.OldestUnprojectedAsync(None));

        // A version 1 row has no time of its own: its first entry's is used.
        await OwnerScalarAsync("UPDATE atp.outbox SET received_at = NULL");
        Assert.Equal(first, await store.OldestUnprojectedAsync(None));
    }

    [Fact]
    public async Task Upgrading_to_version_3_replaces_the_read_models_and_projects_every_log_again()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));
        var clock = new ManualClock(DateTimeOffset.UnixEpoch.AddDays(3));
        var drafts = Enumerable.Range(0, 3).Select(i => new EventDraft(
            null, "acme.audit.v1", clock.GetUtcNow(), new Party("user", $"u-{i}", null), "document.update",
            [new Party("document", $"d-{i}", null)], EventOutcome.Success, null, null)).ToList();
        Assert.IsType<Appended>(await new IngestionService(store, clock).AppendAsync("acme", drafts, null, None));

        // The database as version 2 left it: its read models (entry 0 projected), one outbox row for entries 1–2.
        await OwnerScalarAsync("""
            DROP TABLE atp.event_index;
            DROP FUNCTION atp.lock_head;
            DROP TABLE atp.data_keys;
            DELETE FROM atp.schema_version WHERE version >= 3;
            DROP TABLE atp.dead_letters;
            DROP FUNCTION atp.count_dead_letters;
            DROP FUNCTION atp.list_platform_api_keys;
            DROP FUNCTION atp.revoke_platform_api_key;
            DROP FUNCTION atp.expire_platform_api_key;
            DROP FUNCTION atp.list_log_sizes;
            DROP FUNCTION atp.outbox_backlog;
            DROP TABLE atp.legal_holds;
            DROP TABLE atp.erasure_requests;
            DROP TABLE atp.policy_proposals;
            DROP TABLE atp.policy_versions;
            DROP FUNCTION atp.create_platform_api_key(text, text, text[], bytea, bigint, bigint, bigint, bytea, text);
            ALTER TABLE atp.api_keys DROP COLUMN owner;
            DROP TABLE atp.event_schemas;
            DROP TABLE atp.event_types;
            ALTER TABLE atp.tenants DROP COLUMN require_registered_types;
            ALTER TABLE atp.tenants DROP COLUMN max_stored_events, DROP COLUMN max_stored_bytes;
            ALTER TABLE atp.tree_heads DROP COLUMN stored_bytes;
            DROP FUNCTION atp.purge_entries;
            ALTER TABLE atp.log_entries DROP COLUMN purged_by;
            ALTER TABLE atp.tenants DROP COLUMN ingest_events_per_second, DROP COLUMN ingest_bytes_per_second, DROP COLUMN read_cost_per_second,
                DROP COLUMN max_concurrent_exports, DROP COLUMN max_daily_export_bytes, DROP COLUMN export_job_max_bytes;
            CREATE TABLE atp.event_index (tenant_id text NOT NULL, idx bigint NOT NULL, event_id uuid NOT NULL, occurred_at bigint NOT NULL,
                actor_type text NOT NULL, actor_id text NOT NULL, action text NOT NULL, outcome text NOT NULL, search tsvector NOT NULL,
                PRIMARY KEY (tenant_id, idx));
            CREATE TABLE atp.event_targets (tenant_id text NOT NULL, idx bigint NOT NULL, target_type text NOT NULL, target_id text NOT NULL,
                occurred_at bigint NOT NULL, PRIMARY KEY (tenant_id, idx, target_type, target_id));
            INSERT INTO atp.event_index VALUES ('acme', 0, gen_random_uuid(), 0, 'user', 'u-0', 'document.update', 'success', to_tsvector('simple', 'document update'));
            INSERT INTO atp.event_targets VALUES ('acme', 0, 'document', 'd-0', 0);
            DELETE FROM atp.outbox WHERE first_idx = 0;
            INSERT INTO atp.projections VALUES ('acme', 1);
            """);

        Assert.Equal(PostgresSchema.CurrentVersion, PostgresStore.Migrate(OwnerConnectionString, PostgresServer.AppRole));

        Assert.Equal(0L, await OwnerScalarAsync("SELECT count(*) FROM pg_tables WHERE schemaname = 'atp' AND tablename = 'event_targets'"));
        Assert.Equal(new Atp.Core.Query.ProjectionStatus(0, 3), await store.GetProjectionStatusAsync("acme", None));
        Assert.Equal(3, await store.ProjectPendingAsync(1000, None));
        var found = await store.SearchAsync(new Atp.Core.Query.EventQuery("acme") { TargetId = "d-0", Limit = 10 }, None);
        Assert.Equal(0UL, Assert.Single(found.Hits).Entry.Index);
        Assert.Equal(3, (await store.SearchAsync(new Atp.Core.Query.EventQuery("acme") { Text = "update", Limit = 10 }, None)).Hits.Count);
        Assert.Null(await store.OldestUnprojectedAsync(None));

        // Version 11 back-fills each log's stored bytes from the leaves it already holds.
        var leafBytes = (long)(await OwnerScalarAsync("SELECT SUM(octet_length(leaf))::bigint FROM atp.log_entries WHERE tenant_id = 'acme'"))!;
        Assert.Equal(new StorageUsage(3, leafBytes), await store.GetStorageUsageAsync("acme", None));
    }

    [Fact]
    public async Task A_node_whose_cached_tree_another_node_moved_appends_after_that_nodes_entries()
    {
        var first = Open(admin: true);
        var second = Open();
        Assert.True(await first.TryCreateTenantAsync(NewTenant("acme"), None));
        async Task<ulong> AppendAsync(PostgresStore node, string payload) =>
            Assert.Single(Assert.IsType<Appended>(await node.AppendAsync(new AppendRequest("acme", [TestEntries.Create(payload, DateTimeOffset.UnixEpoch)], null), None)).Receipts).Index;

        // Each node caches the tree it committed; every later append of the other node makes that cache stale, so the
        // one-round-trip write on the cached tree is refused by atp.lock_head and the append goes the long way.
        Assert.Equal(0UL, await AppendAsync(first, "a"));
        Assert.Equal(1UL, await AppendAsync(first, "b"));
        Assert.Equal(2UL, await AppendAsync(second, "c"));
        Assert.Equal(3UL, await AppendAsync(first, "d"));
        Assert.Equal(4UL, await AppendAsync(second, "e"));
        Assert.Equal(5UL, await AppendAsync(second, "f"));

        var stored = await first.ListEntriesAsync("acme", 0, int.MaxValue, None);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (ulong)i), stored.Select(e => e.Index));
        Assert.Equal(ReferenceMerkle.Root(stored.Select(e => e.Leaf).ToList()), (await second.GetTreeHeadAsync("acme", None))!.Root);
        Assert.Equal(6L, await OwnerScalarAsync("SELECT count(*) FROM atp.outbox"));

        // The lock itself, as the application role: it holds the head only where the caller's tree ends.
        var root = (await first.GetTreeHeadAsync("acme", None))!.Root.ToArray();
        await using var connection = new NpgsqlConnection(AppConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var tenant = new NpgsqlCommand("SELECT set_config('atp.tenant_id', 'acme', true)", connection, transaction))
        {
            await tenant.ExecuteNonQueryAsync();
        }

        async Task LockAsync(long size)
        {
            await using var command = new NpgsqlCommand("SELECT atp.lock_head('acme', $1, $2)", connection, transaction)
            {
                Parameters = { new NpgsqlParameter { Value = size }, new NpgsqlParameter { Value = root } },
            };
            await command.ExecuteNonQueryAsync();
        }

        await transaction.SaveAsync("before");
        Assert.Equal(PostgresSchema.HeadMovedState, (await Assert.ThrowsAsync<PostgresException>(() => LockAsync(5))).SqlState);
        await transaction.RollbackAsync("before");
        await LockAsync(6);
    }

    [Fact]
    public async Task An_acknowledged_append_is_committed_when_the_call_returns()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));

        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("durable", DateTimeOffset.UnixEpoch)], null), None));

        // Read on a separate connection: what another node sees after the receipt.
        Assert.Equal(1L, await OwnerScalarAsync("SELECT count(*) FROM atp.log_entries WHERE tenant_id = 'acme'"));
        Assert.Equal(1L, await OwnerScalarAsync("SELECT size FROM atp.tree_heads WHERE tenant_id = 'acme'"));
        Assert.Equal(1L, await OwnerScalarAsync("SELECT count(*) FROM atp.outbox WHERE tenant_id = 'acme' AND first_idx = 0 AND last_idx = 0"));
    }

    [Fact]
    public async Task Two_tenants_get_two_writers_so_a_tenant_held_up_does_not_hold_up_the_other()
    {
        // Tenants are dealt to the writers in turn as they first append; a hash could put both on one writer.
        var store = Open(admin: true, writers: 2);
        foreach (var tenant in new[] { "held", "free" })
        {
            Assert.True(await store.TryCreateTenantAsync(NewTenant(tenant), None));
            Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest(tenant, [TestEntries.Create("first", DateTimeOffset.UnixEpoch)], null), None));
        }

        Task<AppendOutcome> held;
        await using (var other = new NpgsqlConnection(AppConnectionString))
        {
            // Another node's transaction holds the tenant's head row: that tenant's writer waits for it.
            await other.OpenAsync();
            await using var transaction = await other.BeginTransactionAsync();
            await using (var scope = new NpgsqlCommand("SELECT set_config('atp.tenant_id', 'held', true)", other))
            {
                await scope.ExecuteNonQueryAsync();
            }

            await using (var lockIt = new NpgsqlCommand("SELECT size FROM atp.tree_heads WHERE tenant_id = 'held' FOR UPDATE", other))
            {
                Assert.Equal(1L, await lockIt.ExecuteScalarAsync());
            }

            held = store.AppendAsync(new AppendRequest("held", [TestEntries.Create("waits", DateTimeOffset.UnixEpoch)], null), None);
            var free = await store.AppendAsync(new AppendRequest("free", [TestEntries.Create("goes", DateTimeOffset.UnixEpoch)], null), None)
                .WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1UL, Assert.IsType<Appended>(free).Receipts.Single().Index);
            Assert.False(held.IsCompleted);
        }

        Assert.Equal(1UL, Assert.IsType<Appended>(await held.WaitAsync(TimeSpan.FromSeconds(30))).Receipts.Single().Index);
    }

    [Fact]
    public async Task Two_nodes_appending_to_the_same_tenants_keep_every_log_gap_free_and_every_receipt_true()
    {
        // The second node runs two writer loops, so a tenant's appends meet those of another node and of a sibling writer.
        var nodes = new[] { Open(admin: true), Open(writers: 2) };
        string[] tenants = ["tenant-a", "tenant-b", "tenant-c"];
        foreach (var tenant in tenants)
        {
            Assert.True(await nodes[0].TryCreateTenantAsync(NewTenant(tenant), None));
        }

        var results = new ConcurrentBag<(string Tenant, PendingEntry[] Entries, IReadOnlyList<Receipt> Receipts)>();
        var workers = Enumerable.Range(0, 16).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            var node = nodes[worker % 2];
            for (var i = 0; i < 40; i++)
            {
                var tenant = tenants[random.Next(tenants.Length)];
                var entries = Enumerable.Range(0, random.Next(1, 6)).Select(j => TestEntries.Create($"w{worker}-{i}-{j}", DateTimeOffset.UnixEpoch)).ToArray();
                var appended = Assert.IsType<Appended>(await node.AppendAsync(new AppendRequest(tenant, entries, null), None));
                results.Add((tenant, entries, appended.Receipts));
            }
        }));
        await Task.WhenAll(workers);

        foreach (var tenant in tenants)
        {
            var mine = results.Where(r => r.Tenant == tenant).ToList();
            var stored = await nodes[1].ListEntriesAsync(tenant, 0, int.MaxValue, None);
            Assert.Equal(Enumerable.Range(0, mine.Sum(r => r.Entries.Length)).Select(i => (ulong)i), stored.Select(e => e.Index));
            foreach (var (_, entries, receipts) in mine)
            {
                for (var i = 0; i < entries.Length; i++)
                {
                    Assert.Equal(entries[i].EventId, stored[(int)receipts[i].Index].EventId);
                    Assert.Equal(entries[i].LeafHash, receipts[i].LeafHash);
                }
            }

            var head = (await nodes[0].GetTreeHeadAsync(tenant, None))!;
            Assert.Equal((ulong)stored.Count, head.Size);
            Assert.Equal(ReferenceMerkle.Root(stored.Select(e => e.Leaf).ToList()), head.Root);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_request_the_database_refuses_fails_alone_and_its_group_commit_goes_on(bool withIdempotencyKeys)
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("tenant-a"), None));
        Assert.True(await store.TryCreateTenantAsync(NewTenant("tenant-b"), None));

        // A rule only this test has: the database refuses any leaf that mentions "poison".
        await OwnerScalarAsync("ALTER TABLE atp.log_entries ADD CONSTRAINT no_poison CHECK (position('poison' in convert_from(leaf, 'UTF8')) = 0)");
        AppendRequest Request(string tenant, string payload, int n) => new(
            tenant, [TestEntries.Create(payload, DateTimeOffset.UnixEpoch)],
            withIdempotencyKeys ? new IdempotencyClaim($"key-{n}", Atp.Integrity.Hash.Sha256(System.Text.Encoding.UTF8.GetBytes(payload))) : null);

        // Queued together so that group commits hold good requests before and after the bad one, of both tenants.
        var good = Enumerable.Range(0, 120).Select(i => store.AppendAsync(Request(i % 2 == 0 ? "tenant-a" : "tenant-b", $"good-{i}", i), None)).ToList();
        var bad = store.AppendAsync(Request("tenant-a", "poison", 1000), None);
        good.AddRange(Enumerable.Range(120, 120).Select(i => store.AppendAsync(Request(i % 2 == 0 ? "tenant-a" : "tenant-b", $"good-{i}", i), None)));

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => bad);
        Assert.Contains("no_poison", error.InnerException!.Message, StringComparison.Ordinal);
        foreach (var append in good)
        {
            Assert.IsType<Appended>(await append);
        }

        foreach (var tenant in new[] { "tenant-a", "tenant-b" })
        {
            var stored = await store.ListEntriesAsync(tenant, 0, int.MaxValue, None);
            Assert.Equal(Enumerable.Range(0, 120).Select(i => (ulong)i), stored.Select(e => e.Index));
            Assert.Equal(ReferenceMerkle.Root(stored.Select(e => e.Leaf).ToList()), (await store.GetTreeHeadAsync(tenant, None))!.Root);
        }

        // The outbox names every stored entry exactly once (a row per request, or per tenant of a group commit).
        Assert.Equal(240L, await OwnerScalarAsync("SELECT coalesce(sum(last_idx - first_idx + 1), 0)::bigint FROM atp.outbox"));
        Assert.Equal(240L, await OwnerScalarAsync(
            "SELECT count(DISTINCT (o.tenant_id, i)) FROM atp.outbox o CROSS JOIN LATERAL generate_series(o.first_idx, o.last_idx) AS i WHERE i < 120"));
    }

    [Fact]
    public async Task A_checkpoint_is_left_to_the_node_holding_the_tenants_sealer_lock()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));

        // Another node sealing acme: it holds the tenant's sealer lock for its transaction.
        await using (var other = new NpgsqlConnection(AppConnectionString))
        {
            await other.OpenAsync();
            await using var transaction = await other.BeginTransactionAsync();
            await using var lockIt = new NpgsqlCommand("SELECT pg_advisory_xact_lock(1635020915, hashtext('acme'))", other);
            await lockIt.ExecuteNonQueryAsync();

            await store.SaveCheckpointAsync("acme", 0, "while locked", DateTimeOffset.UnixEpoch, None);
            Assert.Null(await store.GetLatestCheckpointAsync("acme", None));
        }

        await store.SaveCheckpointAsync("acme", 0, "after", DateTimeOffset.UnixEpoch, None);
        Assert.Equal("after", (await store.GetLatestCheckpointAsync("acme", None))!.Note);
    }

    [Fact]
    public async Task A_seal_neither_reads_nor_signs_while_another_node_holds_the_tenants_sealer_lock()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("a", DateTimeOffset.UnixEpoch)], null), None));
        var signed = new List<TreeHead>();
        Task<string?> Sign(TreeHead head, CancellationToken cancellationToken)
        {
            signed.Add(head);
            return Task.FromResult<string?>($"note {head.Size}");
        }

        await using (var other = new NpgsqlConnection(AppConnectionString))
        {
            await other.OpenAsync();
            await using var transaction = await other.BeginTransactionAsync();
            await using var lockIt = new NpgsqlCommand("SELECT pg_advisory_xact_lock(1635020915, hashtext('acme'))", other);
            await lockIt.ExecuteNonQueryAsync();

            Assert.False(await store.SealAsync("acme", Sign, DateTimeOffset.UnixEpoch, None));
            Assert.Empty(signed);
        }

        Assert.True(await store.SealAsync("acme", Sign, DateTimeOffset.UnixEpoch, None));
        Assert.Equal([(await store.GetTreeHeadAsync("acme", None))!], signed);
        Assert.Equal("note 1", (await store.GetLatestCheckpointAsync("acme", None))!.Note);

        // Covered: nothing to sign until the log grows.
        Assert.False(await store.SealAsync("acme", Sign, DateTimeOffset.UnixEpoch, None));
        Assert.Single(signed);
    }

    [Fact]
    public async Task A_batch_seal_leaves_a_tenant_another_node_is_sealing_to_it_and_holds_the_others_until_its_commit()
    {
        var store = Open(admin: true);
        string[] tenants = ["acme", "globex", "initech"];
        foreach (var tenant in tenants)
        {
            Assert.True(await store.TryCreateTenantAsync(NewTenant(tenant), None));
            Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest(tenant, [TestEntries.Create(tenant, DateTimeOffset.UnixEpoch)], null), None));
        }

        await using var other = new NpgsqlConnection(AppConnectionString);
        await other.OpenAsync();
        async Task<bool> OtherNodeCanLockAsync(string tenant)
        {
            await using var transaction = await other.BeginTransactionAsync();
            await using var tryLock = new NpgsqlCommand($"SELECT pg_try_advisory_xact_lock(1635020915, hashtext('{tenant}'))", other, transaction);
            return (bool)(await tryLock.ExecuteScalarAsync())!;
        }

        var signed = new List<string>();
        var lockedWhileSigning = new List<bool>();
        async Task<string?> Sign(string tenant, TreeHead head, CancellationToken cancellationToken)
        {
            signed.Add(tenant);
            lockedWhileSigning.Add(!await OtherNodeCanLockAsync(tenant));
            return $"note {tenant} {head.Size}";
        }

        await using (var acmeSealer = new NpgsqlConnection(AppConnectionString))
        {
            // Another node sealing acme holds its lock: this batch neither reads nor signs acme's head.
            await acmeSealer.OpenAsync();
            await using var transaction = await acmeSealer.BeginTransactionAsync();
            await using var lockIt = new NpgsqlCommand("SELECT pg_advisory_xact_lock(1635020915, hashtext('acme'))", acmeSealer, transaction);
            await lockIt.ExecuteNonQueryAsync();

            Assert.Equal(2, await store.SealManyAsync(tenants, Sign, DateTimeOffset.UnixEpoch, None));
        }

        Assert.Equal(["globex", "initech"], signed);
        Assert.Equal([true, true], lockedWhileSigning);
        Assert.Null(await store.GetLatestCheckpointAsync("acme", None));
        Assert.Equal("note globex 1", (await store.GetLatestCheckpointAsync("globex", None))!.Note);
        Assert.True(await OtherNodeCanLockAsync("globex"), "the batch's locks end with its transaction");

        // The next pass seals what was left.
        Assert.Equal(1, await store.SealManyAsync(tenants, Sign, DateTimeOffset.UnixEpoch, None));
        Assert.Equal("note acme 1", (await store.GetLatestCheckpointAsync("acme", None))!.Note);
    }

    [Fact]
    public async Task A_destroyed_data_keys_bytes_leave_the_tables_files_with_VACUUM_FULL_while_the_other_keys_stay()
    {
        var store = Open(admin: true);
        Assert.True(await store.TryCreateTenantAsync(NewTenant("acme"), None));
        var erased = new WrappedDataKey("erased-subject", System.Security.Cryptography.RandomNumberGenerator.GetBytes(60));
        var kept = new WrappedDataKey("kept-subject", System.Security.Cryptography.RandomNumberGenerator.GetBytes(60));
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("a", DateTimeOffset.UnixEpoch)], null) { DataKeys = [erased, kept] }, None));
        Assert.IsType<Appended>(await store.AppendAsync(new AppendRequest("acme", [TestEntries.Create("tombstone", DateTimeOffset.UnixEpoch)], null) { DestroyedDataKeys = [erased.KeyId] }, None));
        Assert.Null(await store.FindDataKeyAsync("acme", erased.KeyId, None));

        // Writes the table's pages out (as the superuser: CHECKPOINT) and reads its heap file from the data directory.
        async Task<byte[]> HeapAsync()
        {
            await using var connection = new NpgsqlConnection(_server.ConnectionString(_database, "postgres"));
            await connection.OpenAsync();
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection);
            await checkpoint.ExecuteNonQueryAsync();
            await using var path = new NpgsqlCommand("SELECT pg_relation_filepath('atp.data_keys')", connection);
            return await File.ReadAllBytesAsync(Path.Combine(_server.DataDirectory, (string)(await path.ExecuteScalarAsync())!));
        }

        // Deleted, the row is gone from every query but its bytes are still in the table's file.
        var deleted = await HeapAsync();
        Assert.True(deleted.AsSpan().IndexOf(erased.Wrapped) >= 0, "the deleted key's bytes were not in the table's file before VACUUM: the scan looks in the wrong place");
        Assert.True(deleted.AsSpan().IndexOf(kept.Wrapped) >= 0);

        // A VACUUM by the owner prunes the page (PostgreSQL 15, as the tests run it: the freed space no longer holds
        // them); a VACUUM FULL writes the table to a new file. The other key stays readable and in the file throughout.
        foreach (var vacuum in new[] { "VACUUM atp.data_keys", "VACUUM FULL atp.data_keys" })
        {
            await OwnerScalarAsync(vacuum);
            var heap = await HeapAsync();
            Assert.True(heap.AsSpan().IndexOf(erased.Wrapped) < 0, $"after {vacuum} the table's file still holds the destroyed key");
            Assert.True(heap.AsSpan().IndexOf(kept.Wrapped) >= 0, $"after {vacuum} the kept key is not in the table's file");
            Assert.Equal(kept.Wrapped, await store.FindDataKeyAsync("acme", kept.KeyId, None));
        }
    }

    private PostgresStore Open(bool admin = false, string? connectionString = null, int writers = 1)
    {
        var store = new PostgresStore(
            Options.Create(new PostgresStoreOptions
            {
                ConnectionString = connectionString ?? AppConnectionString,
                AdminConnectionString = admin ? OwnerConnectionString : null,
                Writers = writers,
            }),
            TimeProvider.System,
            NullLogger<PostgresStore>.Instance);
        _stores.Add(store);
        return store;
    }

    private async Task<object?> OwnerScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private static Tenant NewTenant(string id) =>
        new(id, id, Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UnixEpoch);
}
