using Atp.Core.Events;
using Atp.Core.Ingestion;
using System.Text;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Atp.Storage.Postgres.Tests;

/// <summary>
/// Tenant isolation enforced by the database itself: connected as the application role with plain SQL (not through the
/// store), every tenant table shows nothing without the tenant setting, and with tenant A's setting no row of tenant
/// B can be seen, changed, deleted or written.
/// </summary>
public sealed class RowLevelSecurityTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private const string A = "tenant-a";
    private const string B = "tenant-b";

    public async Task InitializeAsync()
    {
        await database.TruncateAsync();

        // Rows of both tenants in every tenant table, written the way the server writes them.
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 10, 0, 0, TimeSpan.Zero));
        await using var store = new PostgresStore(
            Options.Create(new PostgresStoreOptions { ConnectionString = database.AppConnectionString }), clock, NullLogger<PostgresStore>.Instance);
        // Real events: a first request per tenant is projected into the read models (its outbox row consumed), a
        // second one stays waiting in the outbox, so read models and outbox both hold rows of both tenants.
        var ingestion = new IngestionService(store, clock);
        List<EventDraft> Drafts(string tenant, int count) => [.. Enumerable.Range(0, count).Select(i => new EventDraft(
            null, "acme.audit.v1", clock.GetUtcNow(), new Party("user", $"{tenant}-user-{i}", "Ada"), "document.read",
            [new Party("document", $"{tenant}-doc-{i}", null)], EventOutcome.Success, null, null))];
        foreach (var tenant in new[] { A, B })
        {
            Assert.True(await store.TryCreateTenantAsync(
                new Tenant(tenant, tenant, Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, clock.GetUtcNow()), default));
            await store.CreateApiKeyAsync(new ApiKey($"key-{tenant}", tenant, "k", [Scopes.EventsWrite], ApiKeyFormat.Hash(ApiKeyFormat.Generate()), clock.GetUtcNow()), default);
            Assert.True(await store.TryAddSchemaVersionAsync(tenant, new Atp.Core.Schemas.StoredSchema("acme.audit.v1", 1, """{"type":"object"}""", clock.GetUtcNow()), "BACKWARD", default));
            Assert.Equal(Atp.Core.Policy.PolicyApplyResult.Applied, await store.ApplyPolicyVersionAsync(
                tenant, new Atp.Core.Policy.PolicyVersion(1, new Atp.Core.Policy.PolicyDocument(null, null), null, null, null, clock.GetUtcNow()), default));
            await store.CreatePolicyProposalAsync(
                tenant, new Atp.Core.Policy.PolicyProposal($"p-{tenant}", 1, new Atp.Core.Policy.PolicyDocument(true, null), "r", "alice", clock.GetUtcNow(), clock.GetUtcNow().AddDays(7)), default);
            await store.CreateHoldAsync(
                new Atp.Core.Holds.LegalHold($"hold-{tenant}", tenant, new Atp.Core.Holds.HoldScope(null, null, null, null, null), "r", "alice", clock.GetUtcNow(), null, null), default);
            Assert.True(await store.CreateErasureRequestAsync(
                new Atp.Core.Erasure.ErasureApprovalRequest($"era-{tenant}", tenant, $"{tenant}-user-0", $"key-of-{tenant}", "r", "alice", clock.GetUtcNow(), clock.GetUtcNow().AddDays(7)), 1000, default));
            Assert.IsType<Appended>(await ingestion.AppendAsync(tenant, Drafts(tenant, 2), null, default));
            Assert.Equal(2, await store.ProjectPendingAsync(1, default));

            // An entry the read models cannot index: a dead letter of the tenant. Its append also carries a wrapped data
            // key of the tenant, as the sequencer writes one with the first entry sealed under it.
            var broken = Encoding.UTF8.GetBytes("{\"action\":");
            Assert.IsType<Appended>(await store.AppendAsync(
                new AppendRequest(tenant, [new PendingEntry(Guid.CreateVersion7(), false, broken, MerkleHasher.HashLeaf(broken), null, clock.GetUtcNow())], null)
                {
                    DataKeys = [new Atp.Core.Classification.WrappedDataKey($"key-of-{tenant}", new byte[60])],
                },
                default));
            Assert.Equal(0, await store.ProjectPendingAsync(1, default));
        }

        foreach (var tenant in new[] { A, B })
        {
            var claim = new IdempotencyClaim($"retry-{tenant}", Hash.Sha256(Encoding.UTF8.GetBytes(tenant)));
            Assert.IsType<Appended>(await ingestion.AppendAsync(tenant, Drafts(tenant, 1), claim, default));
            await store.SaveCheckpointAsync(tenant, 4, $"note of {tenant}", clock.GetUtcNow(), default);
        }

        await store.CreateApiKeyAsync(new ApiKey("platform-key", null, "p", [Scopes.PlatformAdmin], ApiKeyFormat.Hash(ApiKeyFormat.Generate()), clock.GetUtcNow()), default);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Every_tenant_table_holds_rows_of_both_tenants_so_the_checks_below_are_not_vacuous()
    {
        var tables = await TenantTablesAsync();

        Assert.Equal(["api_keys", "checkpoints", "data_keys", "dead_letters", "erasure_requests", "event_index", "event_schemas", "event_types", "idempotency_keys", "legal_holds", "log_entries", "outbox", "policy_proposals", "policy_versions", "projections", "tenants", "tree_heads"], tables.Order());
        foreach (var table in tables)
        {
            Assert.Equal(2L, await database.ExecuteAsOwnerAsync($"SELECT count(DISTINCT tenant_id) FROM atp.{table}"));
        }
    }

    [Fact]
    public async Task Without_the_tenant_setting_no_row_of_any_tenant_table_is_visible()
    {
        await using var connection = await OpenAsAppAsync();

        // A transaction that had a tenant set leaves nothing behind on the (pooled) connection.
        await using (var scoped = await connection.BeginTransactionAsync())
        {
            await SetTenantAsync(connection, A);
            Assert.True(await CountAsync(connection, "atp.log_entries") > 0);
            await scoped.CommitAsync();
        }

        foreach (var table in await TenantTablesAsync())
        {
            Assert.Equal(0L, await CountAsync(connection, $"atp.{table}"));
        }
    }

    [Fact]
    public async Task With_tenant_a_set_no_row_of_tenant_b_is_visible_changeable_or_deletable()
    {
        await using var connection = await OpenAsAppAsync();
        foreach (var table in await TenantTablesAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await SetTenantAsync(connection, A);

            Assert.True(await CountAsync(connection, $"atp.{table}") > 0, $"{table}: tenant A sees none of its own rows");
            Assert.Equal(0L, await CountAsync(connection, $"atp.{table} WHERE tenant_id IS DISTINCT FROM '{A}'"));
            Assert.Equal(0, await RowsChangedOrDeniedAsync(connection, $"UPDATE atp.{table} SET tenant_id = tenant_id WHERE tenant_id = '{B}'"));
            Assert.Equal(0, await RowsChangedOrDeniedAsync(connection, $"DELETE FROM atp.{table} WHERE tenant_id = '{B}'"));
            await transaction.RollbackAsync();
        }
    }

    [Fact]
    public async Task With_tenant_a_set_a_row_for_tenant_b_cannot_be_written_into_any_tenant_table()
    {
        await using var connection = await OpenAsAppAsync();
        foreach (var table in await TenantTablesAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await SetTenantAsync(connection, A);
            var columns = await WritableColumnsAsync(connection, table);

            // A copy of one of tenant A's own rows, relabelled as tenant B's.
            var insert = $$"""
                INSERT INTO atp.{{table}} ({{columns}})
                SELECT {{columns}} FROM jsonb_populate_record(NULL::atp.{{table}}, (SELECT to_jsonb(r) || jsonb_build_object('tenant_id', '{{B}}') FROM atp.{{table}} r LIMIT 1))
                """;
            var error = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(connection, insert));

            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
            Assert.Contains("row-level security", error.MessageText, StringComparison.Ordinal);
            await transaction.RollbackAsync();
        }
    }

    [Fact]
    public async Task The_application_role_owns_nothing_bypasses_nothing_and_cannot_read_partitions_directly()
    {
        await using var connection = await OpenAsAppAsync();

        Assert.Equal(false, await ScalarAsync(connection, "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"));
        Assert.Equal(0L, await ScalarAsync(connection, "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"));
        Assert.Equal(0L, await ScalarAsync(connection, """
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'atp' AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_version' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
            """));
        var error = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(connection, "SELECT count(*) FROM atp.log_entries_p0"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
    }

    [Fact]
    public async Task The_platform_functions_return_only_what_they_are_for()
    {
        await using var connection = await OpenAsAppAsync();

        // Key lookup by id finds one key, whichever tenant it belongs to, and nothing else of that tenant.
        Assert.Equal(B, await ScalarAsync(connection, "SELECT tenant_id FROM atp.find_api_key_by_id('key-tenant-b')"));
        Assert.Equal(0L, await ScalarAsync(connection, "SELECT count(*) FROM atp.find_api_key_by_id('no-such-key')"));
        Assert.Equal(true, await ScalarAsync(connection, "SELECT atp.has_platform_admin_key()"));

        // The sealer's list carries heads only, and the platform key stays invisible to plain queries.
        Assert.Equal(0L, await ScalarAsync(connection, "SELECT count(*) FROM atp.list_unsealed_logs()"));
        Assert.Equal(0L, await CountAsync(connection, "atp.api_keys"));

        // The dead-letter count spans tenants as a number only; the letters themselves stay behind the tenant setting.
        Assert.Equal(2L, await ScalarAsync(connection, "SELECT atp.count_dead_letters()"));
        Assert.Equal(0L, await CountAsync(connection, "atp.dead_letters"));

        // So is the outbox backlog (one waiting entry per tenant); the outbox rows themselves stay hidden.
        Assert.Equal(2L, await ScalarAsync(connection, "SELECT atp.outbox_backlog(100)"));
        Assert.Equal(0L, await CountAsync(connection, "atp.outbox"));
    }

    private async Task<NpgsqlConnection> OpenAsAppAsync()
    {
        var connection = new NpgsqlConnection(database.AppConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    // Every table of the atp schema that holds tenant data (partitions are covered through their parent).
    private async Task<List<string>> TenantTablesAsync()
    {
        await using var connection = new NpgsqlConnection(database.OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'atp' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'schema_version'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var tables = new List<string>();
        while (await reader.ReadAsync())
        {
            tables.Add(reader.GetString(0));
        }

        return tables;
    }

    private static async Task<string> WritableColumnsAsync(NpgsqlConnection connection, string table) =>
        (string)(await ScalarAsync(connection, $"""
            SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) FROM information_schema.columns
            WHERE table_schema = 'atp' AND table_name = '{table}' AND is_identity = 'NO'
            """))!;

    private static Task SetTenantAsync(NpgsqlConnection connection, string tenantId) =>
        ExecuteAsync(connection, $"SELECT set_config('atp.tenant_id', '{tenantId}', true)");

    private static async Task<long> CountAsync(NpgsqlConnection connection, string from) =>
        (long)(await ScalarAsync(connection, $"SELECT count(*) FROM {from}"))!;

    // Rows affected; a statement the role has no privilege for counts as zero rows (it changed nothing either).
    private static async Task<int> RowsChangedOrDeniedAsync(NpgsqlConnection connection, string sql)
    {
        await ExecuteAsync(connection, "SAVEPOINT attempt");
        try
        {
            await using var command = new NpgsqlCommand(sql, connection);
            var rows = await command.ExecuteNonQueryAsync();
            await ExecuteAsync(connection, "RELEASE SAVEPOINT attempt");
            return rows;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege && e.MessageText.StartsWith("permission denied", StringComparison.Ordinal))
        {
            await ExecuteAsync(connection, "ROLLBACK TO SAVEPOINT attempt");
            return 0;
        }
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
