using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// The scale-out engine's schema, versioned, in the <c>atp</c> schema of the cell database. Migrations run as the owner
/// role (the one that owns every table and function); the application role is granted only what the store needs.
/// </summary>
/// <remarks>
/// Isolation: every tenant table has <c>tenant_id</c>, row-level security ENABLEd and FORCEd, and one policy for every
/// role: <c>tenant_id = current_setting('atp.tenant_id', true)</c>, a setting the store sets per transaction with
/// <c>set_config(…, true)</c>. Without it no row is visible or writable. The owner has a second policy so that the few
/// SECURITY DEFINER functions (owned by it, callable by the application role) can do the platform-level reads that
/// legitimately span tenants; the owner could disable row-level security anyway, so that grants it nothing new.
/// </remarks>
internal static class PostgresSchema
{
    public const int CurrentVersion = 16;

    /// <summary>The SQLSTATE <c>atp.lock_head</c> raises when the head is no longer where the writer's cached tree ends.</summary>
    public const string HeadMovedState = "AT001";

    /// <summary>Hash partitions of log_entries (fixed at creation; see docs/postgres.md to re-partition).</summary>
    public const int LogEntryPartitions = 16;

    /// <summary>Every table that holds tenant data, with the privileges the application role gets on it.</summary>
    public static readonly (string Table, string Privileges)[] TenantTables =
    [
        ("tenants", "SELECT, INSERT, UPDATE"),
        ("api_keys", "SELECT, INSERT, UPDATE"),
        ("tree_heads", "SELECT, INSERT, UPDATE"),
        // Append-only: no DELETE, and no UPDATE but retention's of the content (leaf, purged_by); leaf hashes and nodes
        // cannot be changed, not even of the tenant's own rows.
        ("log_entries", "SELECT, INSERT, UPDATE (leaf, purged_by)"),
        ("checkpoints", "SELECT, INSERT"),
        ("outbox", "SELECT, INSERT, UPDATE, DELETE"),
        ("idempotency_keys", "SELECT, INSERT"),
        ("event_index", "SELECT, INSERT, DELETE"),
        ("projections", "SELECT, INSERT, UPDATE, DELETE"),
        ("dead_letters", "SELECT, INSERT, UPDATE, DELETE"),
        ("event_types", "SELECT, INSERT, UPDATE"),
        ("event_schemas", "SELECT, INSERT"), // versions are immutable: no UPDATE or DELETE
        ("policy_versions", "SELECT, INSERT"), // versions are immutable: no UPDATE or DELETE
        ("policy_proposals", "SELECT, INSERT, UPDATE"),
        ("data_keys", "SELECT, INSERT, DELETE"), // written once with the append that first needs the key; deleted by an erasure
        ("legal_holds", "SELECT, INSERT, UPDATE"), // released, never deleted: no DELETE
        ("erasure_requests", "SELECT, INSERT, UPDATE"), // closed, never deleted: no DELETE
    ];

    // Lock id serialising migrations of one database when several nodes start at once ('atp-migrate').
    private const long MigrationLock = 0x6174_702D_6D69_67;

    // Version 1. Times are UTC ticks (bigint) so every DateTimeOffset round-trips exactly, as in the embedded engine.
    private static string Version1() => $$"""
        CREATE TABLE atp.tenants (
            tenant_id text NOT NULL PRIMARY KEY,
            name text NOT NULL,
            edition text NOT NULL,
            home_region text NOT NULL,
            residency_mode text NOT NULL,
            allowed_regions text[] NOT NULL,
            status text NOT NULL,
            created_at bigint NOT NULL,
            require_signed_requests boolean NULL,
            ingest_per_second integer NULL,
            query_per_second integer NULL
        );

        -- tenant_id NULL = a platform key: invisible to the application role except through the key functions below.
        CREATE TABLE atp.api_keys (
            key_id text NOT NULL PRIMARY KEY,
            tenant_id text NULL REFERENCES atp.tenants (tenant_id),
            name text NOT NULL,
            scopes text[] NOT NULL,
            key_hash bytea NOT NULL UNIQUE,
            created_at bigint NOT NULL,
            expires_at bigint NULL,
            revoked_at bigint NULL,
            sealed_signing_secret bytea NULL,
            last_region text NULL
        );
        CREATE INDEX api_keys_tenant ON atp.api_keys (tenant_id);

        -- The committed size and root. Appends lock this row FOR UPDATE: one tenant's appends serialise across nodes.
        CREATE TABLE atp.tree_heads (
            tenant_id text NOT NULL PRIMARY KEY REFERENCES atp.tenants (tenant_id),
            size bigint NOT NULL,
            root bytea NOT NULL
        );

        -- The logs, hash-partitioned by tenant; tenant_id leads every index. nodes = the hashes (levels 1, 2, …) of the
        -- perfect subtrees this leaf completed: node (level L, index i) lives in the row of leaf (i+1)·2^L − 1.
        CREATE TABLE atp.log_entries (
            tenant_id text NOT NULL,
            idx bigint NOT NULL,
            event_id uuid NOT NULL,
            leaf_hash bytea NOT NULL,
            nodes bytea NULL,
            received_at bigint NOT NULL,
            leaf bytea NOT NULL,
            PRIMARY KEY (tenant_id, idx)
        ) PARTITION BY HASH (tenant_id);
        CREATE INDEX log_entries_event ON atp.log_entries (tenant_id, event_id);
        {{HashPartitions("log_entries")}}

        CREATE TABLE atp.checkpoints (
            tenant_id text NOT NULL,
            size bigint NOT NULL,
            note text NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, size)
        );

        -- Transactional outbox: one row per append request, naming the entries [first_idx, last_idx] it added.
        -- Projections (issue 5) drain it with FOR UPDATE SKIP LOCKED, so any node that is free takes the next rows.
        CREATE TABLE atp.outbox (
            tenant_id text NOT NULL,
            id bigint GENERATED ALWAYS AS IDENTITY,
            first_idx bigint NOT NULL,
            last_idx bigint NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );

        CREATE TABLE atp.idempotency_keys (
            tenant_id text NOT NULL,
            key text NOT NULL,
            request_hash bytea NOT NULL,
            receipt_ids uuid[] NOT NULL,
            receipt_indexes bigint[] NOT NULL,
            receipt_leaf_hashes bytea[] NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, key)
        );
        CREATE INDEX idempotency_keys_created ON atp.idempotency_keys (created_at);

        -- Read models, filled from the outbox by the projector: tenant_id leads every key and index, and each index ends
        -- in (occurred_at, idx) so a filtered page is read in order. The unique (tenant_id, event_id) is the inbox: a
        -- redelivered outbox row projects nothing twice. search = the words of the actor's and targets' names and the action.
        CREATE TABLE atp.event_index (
            tenant_id text NOT NULL,
            idx bigint NOT NULL,
            event_id uuid NOT NULL,
            occurred_at bigint NOT NULL,
            actor_type text NOT NULL,
            actor_id text NOT NULL,
            action text NOT NULL,
            outcome text NOT NULL,
            search tsvector NOT NULL,
            PRIMARY KEY (tenant_id, idx)
        ) PARTITION BY HASH (tenant_id);
        CREATE UNIQUE INDEX event_index_event ON atp.event_index (tenant_id, event_id);
        CREATE INDEX event_index_time ON atp.event_index (tenant_id, occurred_at, idx);
        CREATE INDEX event_index_actor ON atp.event_index (tenant_id, actor_id, occurred_at, idx);
        CREATE INDEX event_index_action ON atp.event_index (tenant_id, action text_pattern_ops, occurred_at, idx);
        CREATE INDEX event_index_search ON atp.event_index USING gin (search);
        CREATE TABLE atp.event_targets (
            tenant_id text NOT NULL,
            idx bigint NOT NULL,
            target_type text NOT NULL,
            target_id text NOT NULL,
            occurred_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, idx, target_type, target_id)
        ) PARTITION BY HASH (tenant_id);
        CREATE INDEX event_targets_target ON atp.event_targets (tenant_id, target_type, target_id, occurred_at, idx);
        {{HashPartitions("event_index", "event_targets")}}
        -- Per tenant: entries [0, projected_size) are in the read models.
        CREATE TABLE atp.projections (
            tenant_id text NOT NULL PRIMARY KEY,
            projected_size bigint NOT NULL
        );

        -- The projector's claim: the outbox rows of one tenant no other projector holds (its advisory lock), oldest
        -- first, locked for the caller's transaction. One projector per tenant keeps projected_size contiguous.
        CREATE FUNCTION atp.claim_outbox(p_limit integer) RETURNS TABLE (tenant_id text, id bigint, first_idx bigint, last_idx bigint)
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
            DECLARE
                t text;
            BEGIN
                FOR t IN SELECT o.tenant_id FROM atp.outbox o GROUP BY o.tenant_id ORDER BY min(o.id) LOOP
                    IF pg_try_advisory_xact_lock(1634758770, hashtext(t)) THEN
                        RETURN QUERY SELECT o.tenant_id, o.id, o.first_idx, o.last_idx FROM atp.outbox o
                            WHERE o.tenant_id = t ORDER BY o.id LIMIT p_limit FOR UPDATE SKIP LOCKED;
                        RETURN;
                    END IF;
                END LOOP;
            END
            $f$;
        -- Freshness: when the oldest entry still waiting in the outbox was received (a time, nothing of its content).
        CREATE FUNCTION atp.oldest_unprojected() RETURNS bigint
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                SELECT e.received_at FROM atp.outbox o JOIN atp.log_entries e ON e.tenant_id = o.tenant_id AND e.idx = o.first_idx
                ORDER BY o.id LIMIT 1
            $f$;
        -- The second-region detector: records where a key was used, returns where it was used before.
        CREATE FUNCTION atp.set_api_key_region(p_key_id text, p_region text) RETURNS text
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                WITH previous AS (SELECT last_region FROM atp.api_keys WHERE key_id = p_key_id),
                     updated AS (UPDATE atp.api_keys SET last_region = p_region WHERE key_id = p_key_id RETURNING 1)
                SELECT (SELECT last_region FROM previous)
            $f$;

        -- Platform-level operations that span tenants, each as narrow as its caller needs. SECURITY DEFINER runs them as
        -- the owner, whose policy sees every row; search_path is pinned so a caller cannot redirect names.
        CREATE FUNCTION atp.find_api_key_by_hash(p_key_hash bytea) RETURNS SETOF atp.api_keys
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT * FROM atp.api_keys WHERE key_hash = p_key_hash $f$;
        CREATE FUNCTION atp.find_api_key_by_id(p_key_id text) RETURNS SETOF atp.api_keys
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT * FROM atp.api_keys WHERE key_id = p_key_id $f$;
        CREATE FUNCTION atp.has_platform_admin_key() RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT EXISTS (SELECT 1 FROM atp.api_keys WHERE tenant_id IS NULL AND 'platform:admin' = ANY (scopes)) $f$;
        CREATE FUNCTION atp.create_platform_api_key(
                p_key_id text, p_name text, p_scopes text[], p_key_hash bytea, p_created_at bigint,
                p_expires_at bigint, p_revoked_at bigint, p_sealed_signing_secret bytea) RETURNS void
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                INSERT INTO atp.api_keys (key_id, tenant_id, name, scopes, key_hash, created_at, expires_at, revoked_at, sealed_signing_secret)
                VALUES (p_key_id, NULL, p_name, p_scopes, p_key_hash, p_created_at, p_expires_at, p_revoked_at, p_sealed_signing_secret)
            $f$;
        -- Heads only (size and root, already public through checkpoints), for the sealer.
        CREATE FUNCTION atp.list_unsealed_logs() RETURNS TABLE (tenant_id text, size bigint, root bytea)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                SELECT h.tenant_id, h.size, h.root FROM atp.tree_heads h
                WHERE NOT EXISTS (SELECT 1 FROM atp.checkpoints c WHERE c.tenant_id = h.tenant_id AND c.size >= h.size)
            $f$;
        CREATE FUNCTION atp.prune_idempotency_keys(p_before bigint) RETURNS bigint
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                WITH pruned AS (DELETE FROM atp.idempotency_keys WHERE created_at < p_before RETURNING 1)
                SELECT count(*) FROM pruned
            $f$;
        """;

    // Version 2, for ingest speed (docs/performance.md, "End to end on PostgreSQL"):
    // * the outbox row carries the receive time of its first entry, and is ordered by an index on id, so the freshness
    //   gauge reads one outbox row instead of joining the outbox with log_entries (a plan that read the whole log: 143 ms
    //   a call at 330,000 entries, after every projector pass). Rows written by version 1 have no time and fall back
    //   to their entry;
    // * event_index loses its unique (tenant_id, event_id) index: a log holds each event at one index, so the primary
    //   key (tenant_id, idx) already makes a redelivered outbox row project nothing twice (ON CONFLICT DO NOTHING), and
    //   no query reads the read model by event id. One index less to maintain per projected event.
    private static string Version2() => """
        ALTER TABLE atp.outbox ADD COLUMN received_at bigint NULL;
        CREATE INDEX outbox_order ON atp.outbox (id);
        DROP INDEX atp.event_index_event;
        CREATE OR REPLACE FUNCTION atp.oldest_unprojected() RETURNS bigint
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                SELECT COALESCE(o.received_at, (SELECT e.received_at FROM atp.log_entries e WHERE e.tenant_id = o.tenant_id AND e.idx = o.first_idx))
                FROM atp.outbox o ORDER BY o.id LIMIT 1
            $f$;
        """;

    // Version 3, for projection speed (docs/performance.md, "PostgreSQL: one inverted index for the read models"):
    // event_index keeps the time order (occurred_at, idx), actor type and outcome, and one tsvector of verbatim lexemes
    // (SearchTerms) under one GIN index that answers the actor, action, target and word filters. It replaces three
    // B-trees per event and event_targets (a row and two B-trees per target). No primary key either: the projector
    // inserts only entries at or past the tenant's projected_size, which is what kept a redelivered outbox row from
    // projecting twice. The read models are rebuilt from the logs: every tenant's entries are queued again in the
    // outbox, 10,000 per row.
    private static string Version3() => $$"""
        DROP TABLE atp.event_targets;
        DROP TABLE atp.event_index;
        CREATE TABLE atp.event_index (
            tenant_id text NOT NULL,
            idx bigint NOT NULL,
            occurred_at bigint NOT NULL,
            actor_type text NOT NULL,
            outcome text NOT NULL,
            terms tsvector NOT NULL
        ) PARTITION BY HASH (tenant_id);
        CREATE INDEX event_index_time ON atp.event_index (tenant_id, occurred_at, idx);
        CREATE INDEX event_index_terms ON atp.event_index USING gin (terms);
        {{HashPartitions("event_index")}}
        -- The writer's head lock when it appends on the tree it cached: locks the tenant's head if it still has that size
        -- and root, and fails the transaction otherwise (another node appended since), so the writes sent with it in the
        -- same round trip never commit on a stale tree. Runs as the caller, under row-level security.
        CREATE OR REPLACE FUNCTION atp.lock_head(p_tenant_id text, p_size bigint, p_root bytea) RETURNS void
            LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
            AS $f$
            BEGIN
                PERFORM 1 FROM atp.tree_heads WHERE tenant_id = p_tenant_id AND size = p_size AND root = p_root FOR UPDATE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'the head of tenant % is not at size %', p_tenant_id, p_size USING ERRCODE = '{{HeadMovedState}}';
                END IF;
            END
            $f$;
        DELETE FROM atp.projections;
        DELETE FROM atp.outbox;
        INSERT INTO atp.outbox (tenant_id, first_idx, last_idx)
            SELECT h.tenant_id, s.first, LEAST(s.first + 9999, h.size - 1)
            FROM atp.tree_heads h CROSS JOIN LATERAL generate_series(0::bigint, h.size - 1, 10000) AS s(first)
            ORDER BY h.tenant_id, s.first;
        """;

    // Version 4: entries the projector could not project (a leaf that is not valid JSON, a value PostgreSQL refuses such
    // as U+0000 in text), set aside so that no single entry stalls its tenant's projection or, through the claim order,
    // every other tenant's. The count across tenants is a number only, for the metric and readiness.
    private static string Version4() => """
        CREATE TABLE atp.dead_letters (
            tenant_id text NOT NULL,
            idx bigint NOT NULL,
            error text NOT NULL,
            first_seen bigint NOT NULL,
            last_seen bigint NOT NULL,
            attempts integer NOT NULL,
            PRIMARY KEY (tenant_id, idx)
        );
        CREATE FUNCTION atp.count_dead_letters() RETURNS bigint
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT count(*) FROM atp.dead_letters $f$;
        """;

    // The hash partitions of partitioned tables (a DO block: one CREATE TABLE … PARTITION OF per remainder and table).
    private static string HashPartitions(params string[] tables) => $$"""
        DO $partitions$
        BEGIN
            FOR i IN 0..{{LogEntryPartitions - 1}} LOOP
        {{string.Concat(tables.Select(t => $"        EXECUTE format('CREATE TABLE atp.{t}_p%s PARTITION OF atp.{t} FOR VALUES WITH (MODULUS {LogEntryPartitions}, REMAINDER %s)', i, i);\n"))}}
            END LOOP;
        END
        $partitions$;
        """;

    // Version 5: platform-admin keys can be listed, revoked and expired (rotation), still only through the owner's
    // functions; the application role never sees a key row without a tenant.
    private static string Version5() => """
        CREATE FUNCTION atp.list_platform_api_keys() RETURNS SETOF atp.api_keys
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT * FROM atp.api_keys WHERE tenant_id IS NULL ORDER BY created_at, key_id $f$;
        CREATE FUNCTION atp.revoke_platform_api_key(p_key_id text, p_at bigint) RETURNS boolean
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                WITH changed AS (UPDATE atp.api_keys SET revoked_at = COALESCE(revoked_at, p_at) WHERE tenant_id IS NULL AND key_id = p_key_id RETURNING 1)
                SELECT EXISTS (SELECT 1 FROM changed)
            $f$;
        CREATE FUNCTION atp.expire_platform_api_key(p_key_id text, p_at bigint) RETURNS boolean
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                WITH changed AS (UPDATE atp.api_keys SET expires_at = LEAST(COALESCE(expires_at, p_at), p_at) WHERE tenant_id IS NULL AND key_id = p_key_id RETURNING 1)
                SELECT EXISTS (SELECT 1 FROM changed)
            $f$;
        """;

    // Version 6: per-tenant limits on work (null = the edition's default): events and bytes ingested, read cost.
    private static string Version6() => """
        ALTER TABLE atp.tenants ADD COLUMN ingest_events_per_second integer NULL;
        ALTER TABLE atp.tenants ADD COLUMN ingest_bytes_per_second integer NULL;
        ALTER TABLE atp.tenants ADD COLUMN read_cost_per_second integer NULL;
        """;

    // Version 7: per-tenant export quotas (null = the edition's default).
    private static string Version7() => """
        ALTER TABLE atp.tenants ADD COLUMN max_concurrent_exports integer NULL;
        ALTER TABLE atp.tenants ADD COLUMN max_daily_export_bytes bigint NULL;
        ALTER TABLE atp.tenants ADD COLUMN export_job_max_bytes bigint NULL;
        -- Sizes only (public through checkpoints), for the daily export bundles, which look for the logs that grew.
        CREATE FUNCTION atp.list_log_sizes() RETURNS TABLE (tenant_id text, size bigint)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$ SELECT h.tenant_id, h.size FROM atp.tree_heads h ORDER BY h.tenant_id $f$;
        """;

    // Version 8: the per-tenant schema registry (docs/schemas.md) and the tenant setting that refuses unregistered types.
    private static string Version8() => """
        CREATE TABLE atp.event_types (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            type text NOT NULL,
            compatibility text NOT NULL,
            PRIMARY KEY (tenant_id, type)
        );
        CREATE TABLE atp.event_schemas (
            tenant_id text NOT NULL,
            type text NOT NULL,
            version integer NOT NULL,
            schema text NOT NULL, -- RFC 8785 canonical JSON
            created_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, type, version),
            FOREIGN KEY (tenant_id, type) REFERENCES atp.event_types (tenant_id, type)
        );
        ALTER TABLE atp.tenants ADD COLUMN require_registered_types boolean NULL;
        """;

    // Version 9: the outbox backlog gauge (atp.outbox.backlog): entries waiting to be projected, across tenants, as a
    // number only. It reads at most p_max_rows outbox rows in id order (the outbox_order index), so a long backlog
    // costs a bounded scan, not a count of the whole table.
    private static string Version9() => """
        CREATE FUNCTION atp.outbox_backlog(p_max_rows integer) RETURNS bigint
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                SELECT COALESCE(sum(o.last_idx - o.first_idx + 1), 0)::bigint
                FROM (SELECT first_idx, last_idx FROM atp.outbox ORDER BY id LIMIT p_max_rows) o
            $f$;
        """;

    // Version 10: policy documents with two-person approval (docs/policy.md): the owner (person) of each API key, the
    // immutable versions of each tenant's policy, and the proposals to change it. Platform keys are written only by the
    // owner's function, which gains the owner.
    private static string Version10() => """
        ALTER TABLE atp.api_keys ADD COLUMN owner text NULL;
        CREATE FUNCTION atp.create_platform_api_key(
                p_key_id text, p_name text, p_scopes text[], p_key_hash bytea, p_created_at bigint,
                p_expires_at bigint, p_revoked_at bigint, p_sealed_signing_secret bytea, p_owner text) RETURNS void
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                INSERT INTO atp.api_keys (key_id, tenant_id, name, scopes, key_hash, created_at, expires_at, revoked_at, sealed_signing_secret, owner)
                VALUES (p_key_id, NULL, p_name, p_scopes, p_key_hash, p_created_at, p_expires_at, p_revoked_at, p_sealed_signing_secret, p_owner)
            $f$;
        CREATE TABLE atp.policy_versions (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            version integer NOT NULL,
            document text NOT NULL, -- JSON, every member present
            proposal_id text NULL,
            proposed_by text NULL,
            approved_by text NULL,
            applied_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, version)
        );
        CREATE TABLE atp.policy_proposals (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            proposal_id text NOT NULL,
            base_version integer NOT NULL,
            document text NOT NULL,
            reason text NOT NULL,
            proposed_by text NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            state text NOT NULL,
            closed_by text NULL,
            closed_at bigint NULL,
            close_reason text NULL,
            PRIMARY KEY (tenant_id, proposal_id)
        );
        CREATE INDEX policy_proposals_created ON atp.policy_proposals (tenant_id, created_at);
        """;

    // Version 11: storage quotas per tenant (null = the edition's default, 0 = unlimited), and the bytes of leaves each
    // log stores, kept in the append's transaction; back-filled from the leaves already stored.
    private static string Version11() => """
        ALTER TABLE atp.tenants ADD COLUMN max_stored_events bigint NULL;
        ALTER TABLE atp.tenants ADD COLUMN max_stored_bytes bigint NULL;
        ALTER TABLE atp.tree_heads ADD COLUMN stored_bytes bigint NOT NULL DEFAULT 0;
        UPDATE atp.tree_heads h SET stored_bytes = s.bytes
        FROM (SELECT e.tenant_id, SUM(octet_length(e.leaf))::bigint AS bytes FROM atp.log_entries e GROUP BY e.tenant_id) s
        WHERE s.tenant_id = h.tenant_id;
        """;

    // Version 12: classified fields (docs/classification.md): the data keys that seal them, one per (tenant, key id),
    // wrapped by the tenant's KEK; the key id is a keyed hash of the data subject, never the subject itself.
    private static string Version12() => """
        CREATE TABLE atp.data_keys (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            key_id text NOT NULL,
            wrapped bytea NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (tenant_id, key_id)
        );
        """;

    // Version 13: the sealer's listing of grown logs probes each head's latest checkpoint through the primary key (an
    // index-only scan backward per head) instead of letting the planner hash every checkpoint row ever stored, so its
    // cost no longer grows with history (docs/performance.md, "Batched sealing"). Same rows: a head is unsealed when no
    // checkpoint of its size or larger exists.
    private static string Version13() => """
        CREATE OR REPLACE FUNCTION atp.list_unsealed_logs() RETURNS TABLE (tenant_id text, size bigint, root bytea)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $f$
                SELECT h.tenant_id, h.size, h.root FROM atp.tree_heads h
                WHERE h.size > COALESCE((SELECT max(c.size) FROM atp.checkpoints c WHERE c.tenant_id = h.tenant_id), -1)
            $f$;
        """;

    // Version 14: legal holds (docs/api.md, "Legal holds"): the scope as JSON (HoldScope's members), who placed and
    // released each hold and when; a hold is released, never deleted, so the list keeps its history.
    private static string Version14() => """
        CREATE TABLE atp.legal_holds (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            hold_id text NOT NULL,
            scope text NOT NULL, -- JSON
            reason text NOT NULL,
            issuer text NOT NULL,
            created_at bigint NOT NULL,
            released_at bigint NULL, -- null while active
            released_by text NULL,
            PRIMARY KEY (tenant_id, hold_id)
        );
        CREATE INDEX legal_holds_created ON atp.legal_holds (tenant_id, created_at);
        """;

    // Version 15: retention (docs/operations.md, "Retention"): a purged entry keeps its leaf hash and nodes, loses its
    // leaf (empty) and names the purge record that removed it. atp.purge_entries runs as the caller (the application
    // role, under its tenant's row-level security) and fails the whole request if any entry was purged already, so no
    // two purge records ever claim one entry.
    private static string Version15() => """
        ALTER TABLE atp.log_entries ADD COLUMN purged_by bigint NULL;
        CREATE INDEX log_entries_purged ON atp.log_entries (tenant_id, purged_by) WHERE purged_by IS NOT NULL;
        CREATE FUNCTION atp.purge_entries(p_tenant text, p_indexes bigint[], p_purged_by bigint, p_bytes bigint) RETURNS void
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
            AS $f$
            DECLARE
                purged bigint;
            BEGIN
                UPDATE atp.log_entries SET leaf = ''::bytea, purged_by = p_purged_by
                WHERE tenant_id = p_tenant AND idx = ANY (p_indexes) AND idx < p_purged_by AND purged_by IS NULL;
                GET DIAGNOSTICS purged = ROW_COUNT;
                IF purged <> cardinality(p_indexes) THEN
                    RAISE EXCEPTION 'retention: % of % entries are purged already or not before the purge record', cardinality(p_indexes) - purged, cardinality(p_indexes)
                        USING ERRCODE = 'AT002';
                END IF;
                UPDATE atp.tree_heads SET stored_bytes = stored_bytes - p_bytes WHERE tenant_id = p_tenant;
            END
            $f$;
        """;

    // Version 16: erasure requests awaiting a second person (docs/classification.md, "Erasure"): the subject is kept
    // only while pending (overwritten with NULL when the request leaves pending); approved, rejected, expired or failed
    // requests stay listed, never deleted. The second index finds the tenant's pending requests (bounded per tenant).
    private static string Version16() => """
        CREATE TABLE atp.erasure_requests (
            tenant_id text NOT NULL REFERENCES atp.tenants (tenant_id),
            request_id text NOT NULL,
            subject text NULL, -- null once the request left pending
            subject_key_id text NOT NULL,
            reason text NOT NULL,
            requested_by text NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            state text NOT NULL,
            closed_by text NULL,
            closed_at bigint NULL,
            close_reason text NULL,
            tombstone_index bigint NULL,
            PRIMARY KEY (tenant_id, request_id)
        );
        CREATE INDEX erasure_requests_created ON atp.erasure_requests (tenant_id, created_at);
        CREATE INDEX erasure_requests_state ON atp.erasure_requests (tenant_id, state, expires_at);
        """;

    /// <summary>
    /// Creates or upgrades the schema and (re)grants the application role; run with the owner role's connection.
    /// Idempotent; serialised by an advisory lock so nodes starting together do not race.
    /// </summary>
    public static int Migrate(NpgsqlConnection owner, string applicationRole)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(applicationRole);
        using var transaction = owner.BeginTransaction();
        Execute(owner, $"SELECT pg_advisory_xact_lock({MigrationLock})");
        Execute(owner, """
            CREATE SCHEMA IF NOT EXISTS atp;
            CREATE TABLE IF NOT EXISTS atp.schema_version (version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
            """);
        var current = ReadVersion(owner);
        RefuseNewer(current);

        Func<string>[] steps = [Version1, Version2, Version3, Version4, Version5, Version6, Version7, Version8, Version9, Version10, Version11, Version12, Version13, Version14, Version15, Version16];
        for (var version = current + 1; version <= CurrentVersion; version++)
        {
            Execute(owner, steps[version - 1]());
            Execute(owner, IsolateTenantTables());
            Execute(owner, $"INSERT INTO atp.schema_version (version) VALUES ({version})");
        }

        Execute(owner, Grants(applicationRole));
        transaction.Commit();
        return CurrentVersion;
    }

    /// <summary>Refuses a database whose schema this build does not know exactly (newer, older or missing).</summary>
    public static void RequireCurrent(NpgsqlConnection connection)
    {
        int version;
        try
        {
            version = ReadVersion(connection);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName or PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new InvalidOperationException(
                "The database has no ATP schema the application role can read. Run 'atp admin migrate' (or start one server with ConnectionStrings:AtpAdmin) first.", e);
        }

        RefuseNewer(version);
        if (version < CurrentVersion)
        {
            throw new InvalidOperationException(
                $"The database schema is version {version}, older than this ATP build needs ({CurrentVersion}). Run 'atp admin migrate' first.");
        }
    }

    /// <summary>Refuses to run as a role that row-level security would not hold: a superuser, BYPASSRLS, or the owner.</summary>
    public static void RequireIsolatedRole(NpgsqlConnection connection)
    {
        using var command = new NpgsqlCommand("""
            SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'MEMBER')
            FROM pg_roles r, pg_class c
            WHERE r.rolname = current_user AND c.oid = 'atp.log_entries'::regclass
            """, connection);
        if (command.ExecuteScalar() is true)
        {
            throw new InvalidOperationException(
                "ConnectionStrings:Atp connects as a role that bypasses row-level security (a superuser, a BYPASSRLS role or the schema owner). Use an application role that owns nothing.");
        }
    }

    private static void RefuseNewer(int version)
    {
        if (version > CurrentVersion)
        {
            throw new InvalidOperationException(
                $"The database schema is version {version}, newer than this ATP build understands ({CurrentVersion}). Run a newer ATP.");
        }
    }

    private static int ReadVersion(NpgsqlConnection connection)
    {
        using var command = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM atp.schema_version", connection);
        return (int)command.ExecuteScalar()!;
    }

    // Row-level security on every tenant table and every partition (a partition queried directly would otherwise
    // skip its parent's policies; the application role has no grant on partitions either).
    private static string IsolateTenantTables() => $$"""
        DO $isolate$
        DECLARE
            t regclass;
        BEGIN
            FOR t IN
                SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'atp' AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_version'
                  AND NOT c.relrowsecurity
            LOOP
                EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
                EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
                EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = current_setting(''atp.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''atp.tenant_id'', true))', t);
                EXECUTE format('CREATE POLICY owner_platform_functions ON %s TO %I USING (true) WITH CHECK (true)', t, current_user);
            END LOOP;
        END
        $isolate$;
        """;

    private static string Grants(string role)
    {
        var quoted = "\"" + role.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        var grants = new System.Text.StringBuilder();
        grants.AppendLine($"GRANT USAGE ON SCHEMA atp TO {quoted};");
        grants.AppendLine($"GRANT SELECT ON atp.schema_version TO {quoted};");
        foreach (var (table, privileges) in TenantTables)
        {
            grants.AppendLine($"GRANT {privileges} ON atp.{table} TO {quoted};");
        }

        grants.AppendLine($"GRANT USAGE ON ALL SEQUENCES IN SCHEMA atp TO {quoted};");
        grants.AppendLine("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA atp FROM PUBLIC;");
        grants.AppendLine($"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA atp TO {quoted};");
        return grants.ToString();
    }

    private static void Execute(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }
}
