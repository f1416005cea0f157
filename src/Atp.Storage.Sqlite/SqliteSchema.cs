using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>The embedded engine's schema, versioned. Every tenant table leads with tenant_id so each query stays on one tenant's rows.</summary>
internal static class SqliteSchema
{
    private const string Version1 = """
        CREATE TABLE tenants (
            id TEXT NOT NULL PRIMARY KEY,
            num INTEGER NOT NULL UNIQUE,  -- compact number of the tenant; leads the rowids of its log entries
            name TEXT NOT NULL,
            edition TEXT NOT NULL,
            home_region TEXT NOT NULL,
            residency_mode TEXT NOT NULL,
            allowed_regions TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE api_keys (
            id TEXT NOT NULL PRIMARY KEY,
            tenant_id TEXT NULL REFERENCES tenants(id),
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            key_hash BLOB NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at INTEGER NULL, -- UTC ticks
            revoked_at INTEGER NULL  -- UTC ticks
        ) WITHOUT ROWID;
        CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

        -- The tree head: committed size and root, updated in the same transaction as the entries.
        CREATE TABLE tree_heads (
            tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants(id),
            size INTEGER NOT NULL,
            root BLOB NOT NULL
        ) WITHOUT ROWID;

        -- The logs. rowid = (tenant num << 40) | index, so one tenant's log is one contiguous, append-only rowid range:
        -- entry lookups need no secondary index and a query cannot stray into another tenant's range.
        -- nodes = the hashes (levels 1, 2, …) of the perfect subtrees this leaf completed: node (level L, index i)
        -- lives in the row of leaf (i+1)·2^L − 1, so appending a leaf writes exactly one row.
        CREATE TABLE log_entries (
            id INTEGER PRIMARY KEY,
            event_id BLOB NOT NULL,
            leaf_hash BLOB NOT NULL,
            nodes BLOB NULL,
            received_at INTEGER NOT NULL, -- UTC ticks
            leaf BLOB NOT NULL
        );
        CREATE INDEX log_entries_event ON log_entries (event_id);

        CREATE TABLE checkpoints (
            tenant_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            note TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, size)
        ) WITHOUT ROWID;

        -- Transactional outbox: one row per append request and tenant, naming the entries [first_idx, last_idx]
        -- it added; projections read those entries and de-duplicate by event id.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id TEXT NOT NULL,
            first_idx INTEGER NOT NULL,
            last_idx INTEGER NOT NULL
        );

        CREATE TABLE idempotency_keys (
            tenant_id TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash BLOB NOT NULL,
            receipts TEXT NOT NULL,
            created_at INTEGER NOT NULL, -- UTC ticks, compared as numbers
            PRIMARY KEY (tenant_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
        """;

    // Version 2: per-tenant settings (null = the edition's default), the sealed HMAC secret of signing keys, the region a key was last used in.
    private const string Version2 = """
        ALTER TABLE tenants ADD COLUMN require_signed_requests INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN ingest_per_second INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN query_per_second INTEGER NULL;
        ALTER TABLE api_keys ADD COLUMN sealed_signing_secret BLOB NULL;
        ALTER TABLE api_keys ADD COLUMN last_region TEXT NULL;
        """;

    // Version 3 added the read models to this file; version 4 moved them to their own file (ReadModelSchema).
    private const string Version3 = "SELECT 1;";

    // The read models now live in atp-read.db; the store re-queues every log for projection at open (Reconcile).
    private const string Version4 = """
        DROP TABLE IF EXISTS event_text;
        DROP TABLE IF EXISTS event_targets;
        DROP TABLE IF EXISTS event_index;
        DROP TABLE IF EXISTS projections;
        DELETE FROM outbox;
        """;

    // Version 5: per-tenant limits on work (null = the edition's default): events and bytes ingested, read cost.
    private const string Version5 = """
        ALTER TABLE tenants ADD COLUMN ingest_events_per_second INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN ingest_bytes_per_second INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN read_cost_per_second INTEGER NULL;
        """;

    // Version 6: per-tenant export quotas (null = the edition's default).
    private const string Version6 = """
        ALTER TABLE tenants ADD COLUMN max_concurrent_exports INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN max_daily_export_bytes INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN export_job_max_bytes INTEGER NULL;
        """;

    // Version 7: the per-tenant schema registry (docs/schemas.md): event types with their compatibility mode, and the
    // immutable schema versions of each; the tenant setting that refuses unregistered types.
    private const string Version7 = """
        CREATE TABLE event_types (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            type TEXT NOT NULL,
            compatibility TEXT NOT NULL,
            PRIMARY KEY (tenant_id, type)
        ) WITHOUT ROWID;

        CREATE TABLE event_schemas (
            tenant_id TEXT NOT NULL,
            type TEXT NOT NULL,
            version INTEGER NOT NULL,
            schema TEXT NOT NULL,        -- RFC 8785 canonical JSON
            created_at INTEGER NOT NULL, -- UTC ticks
            PRIMARY KEY (tenant_id, type, version),
            FOREIGN KEY (tenant_id, type) REFERENCES event_types (tenant_id, type)
        ) WITHOUT ROWID;

        ALTER TABLE tenants ADD COLUMN require_registered_types INTEGER NULL;
        """;

    // Version 8: policy documents with two-person approval (docs/policy.md): the owner (person) of each API key, the
    // immutable versions of each tenant's policy, and the proposals to change it.
    private const string Version8 = """
        ALTER TABLE api_keys ADD COLUMN owner TEXT NULL;

        CREATE TABLE policy_versions (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            version INTEGER NOT NULL,
            document TEXT NOT NULL,      -- JSON, every member present
            proposal_id TEXT NULL,
            proposed_by TEXT NULL,
            approved_by TEXT NULL,
            applied_at INTEGER NOT NULL, -- UTC ticks
            PRIMARY KEY (tenant_id, version)
        ) WITHOUT ROWID;

        CREATE TABLE policy_proposals (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            id TEXT NOT NULL,
            base_version INTEGER NOT NULL,
            document TEXT NOT NULL,
            reason TEXT NOT NULL,
            proposed_by TEXT NOT NULL,
            created_at INTEGER NOT NULL, -- UTC ticks
            expires_at INTEGER NOT NULL, -- UTC ticks
            state TEXT NOT NULL,
            closed_by TEXT NULL,
            closed_at INTEGER NULL,
            close_reason TEXT NULL,
            PRIMARY KEY (tenant_id, id)
        ) WITHOUT ROWID;
        CREATE INDEX policy_proposals_created ON policy_proposals (tenant_id, created_at);
        """;

    // Version 9: storage quotas per tenant (null = the edition's default, 0 = unlimited), and the bytes of leaves each
    // log stores, kept in the append's transaction; back-filled from the leaves already stored (rowid = num << 40 | index).
    private const string Version9 = """
        ALTER TABLE tenants ADD COLUMN max_stored_events INTEGER NULL;
        ALTER TABLE tenants ADD COLUMN max_stored_bytes INTEGER NULL;
        ALTER TABLE tree_heads ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
        UPDATE tree_heads SET stored_bytes = (
            SELECT COALESCE(SUM(length(e.leaf)), 0) FROM tenants t JOIN log_entries e ON e.id BETWEEN (t.num << 40) AND (t.num << 40) + tree_heads.size - 1
            WHERE t.id = tree_heads.tenant_id);
        """;

    // Version 10: classified fields (docs/classification.md): the data keys that seal them, one per (tenant, key id),
    // wrapped by the tenant's KEK; the key id is a keyed hash of the data subject, never the subject itself. Written in
    // the append that first needs the key, never updated (erasure will delete a subject's row).
    private const string Version10 = """
        CREATE TABLE data_keys (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            key_id TEXT NOT NULL,
            wrapped BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, key_id)
        ) WITHOUT ROWID;
        """;

    // Version 11: legal holds (docs/api.md, "Legal holds"): the scope as JSON (HoldScope's members), who placed and
    // released each hold and when; a hold is released, never deleted, so the list keeps its history.
    private const string Version11 = """
        CREATE TABLE legal_holds (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            id TEXT NOT NULL,
            scope TEXT NOT NULL,          -- JSON
            reason TEXT NOT NULL,
            issuer TEXT NOT NULL,
            created_at INTEGER NOT NULL,  -- UTC ticks
            released_at INTEGER NULL,     -- UTC ticks; null while active
            released_by TEXT NULL,
            PRIMARY KEY (tenant_id, id)
        ) WITHOUT ROWID;
        CREATE INDEX legal_holds_created ON legal_holds (tenant_id, created_at);
        """;

    // Version 12: retention (docs/operations.md, "Retention"): a purged entry keeps its leaf hash and nodes, loses its
    // leaf (an empty blob) and names the purge record that removed it; the partial index lets the projector find the
    // entries a purge record purged (few rows: only purged ones are in it).
    private const string Version12 = """
        ALTER TABLE log_entries ADD COLUMN purged_by INTEGER NULL;
        CREATE INDEX log_entries_purged ON log_entries (purged_by, id) WHERE purged_by IS NOT NULL;
        """;

    // Version 13: erasure requests awaiting a second person (docs/classification.md, "Erasure"): the subject is kept
    // only while pending (overwritten with NULL when the request leaves pending); approved, rejected, expired or failed
    // requests stay listed, never deleted. The index finds the tenant's pending requests (bounded per tenant).
    private const string Version13 = """
        CREATE TABLE erasure_requests (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            id TEXT NOT NULL,
            subject TEXT NULL,              -- null once the request left pending
            subject_key_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            created_at INTEGER NOT NULL,    -- UTC ticks
            expires_at INTEGER NOT NULL,    -- UTC ticks
            state TEXT NOT NULL,
            closed_by TEXT NULL,
            closed_at INTEGER NULL,         -- UTC ticks
            close_reason TEXT NULL,
            tombstone_index INTEGER NULL,
            PRIMARY KEY (tenant_id, id)
        ) WITHOUT ROWID;
        CREATE INDEX erasure_requests_created ON erasure_requests (tenant_id, created_at);
        CREATE INDEX erasure_requests_state ON erasure_requests (tenant_id, state, expires_at);
        """;

    /// <summary>Creates or upgrades the schema; refuses a database written by a newer ATP.</summary>
    public static void Migrate(SqliteConnection connection) => Migrate(connection, [Version1, Version2, Version3, Version4, Version5, Version6, Version7, Version8, Version9, Version10, Version11, Version12, Version13]);

    /// <summary>Applies the steps after the file's version, each with its version row in one transaction.</summary>
    public static void Migrate(SqliteConnection connection, string[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var currentVersion = steps.Length;
        using (var create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
            create.ExecuteNonQuery();
        }

        using var read = connection.CreateCommand();
        read.CommandText = "SELECT MAX(version) FROM schema_version";
        var current = read.ExecuteScalar() is long v ? (int)v : 0;
        if (current > currentVersion)
        {
            throw new InvalidOperationException(
                $"The database schema of {connection.DataSource} is version {current}, newer than this ATP build understands ({currentVersion}). Run a newer ATP.");
        }

        for (var version = current + 1; version <= currentVersion; version++)
        {
            // Each step and its version row commit together, so an interrupted upgrade resumes at the same step.
            using var transaction = connection.BeginTransaction();
            using var migrate = connection.CreateCommand();
            migrate.Transaction = transaction;
            migrate.CommandText = steps[version - 1] + $"\nINSERT INTO schema_version (version) VALUES ({version});";
            migrate.ExecuteNonQuery();
            transaction.Commit();
        }
    }
}
