using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The read models' own database file (<c>atp-read.db</c>), versioned apart from the log's. A separate file has its
/// own write lock and WAL, so the projector writes in parallel with the sequencer instead of taking turns with it;
/// and everything in it can be rebuilt from the log (delete the file and restart: the store re-queues every log).
/// </summary>
internal static class ReadModelSchema
{
    // Keys lead with the tenant's num; every index ends in (occurred_at, idx) so a filtered page is read in order
    // from an index, newest first, without sorting.
    private const string Version1 = """
        CREATE TABLE event_index (
            tenant_num INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            event_id BLOB NOT NULL,
            occurred_at INTEGER NOT NULL, -- UTC ticks
            actor_type TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (tenant_num, idx)
        ) WITHOUT ROWID;
        -- The inbox: one row per event id, so a redelivered outbox row never projects twice.
        CREATE UNIQUE INDEX event_index_event ON event_index (tenant_num, event_id);
        -- Covering for the other filters, so a time-ordered walk (time window, action prefix, combinations) tests each
        -- row inside the index without a lookup in the table.
        CREATE INDEX event_index_time ON event_index (tenant_num, occurred_at, idx, actor_type, action, outcome);
        CREATE INDEX event_index_actor ON event_index (tenant_num, actor_id, occurred_at, idx);
        CREATE INDEX event_index_action ON event_index (tenant_num, action, occurred_at, idx);

        -- One row per target of an event; the key is the search order (by id, or by id and type), so the table is its
        -- own index for those; a search by type alone walks event_targets_type.
        CREATE TABLE event_targets (
            tenant_num INTEGER NOT NULL,
            target_id TEXT NOT NULL,
            target_type TEXT NOT NULL,
            occurred_at INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            PRIMARY KEY (tenant_num, target_id, target_type, occurred_at, idx)
        ) WITHOUT ROWID;
        CREATE INDEX event_targets_type ON event_targets (tenant_num, target_type, occurred_at, idx);

        -- Full text over actor and target names and the action; rowid = the entry's log rowid.
        CREATE VIRTUAL TABLE event_text USING fts5(body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');

        -- Per tenant: entries [0, projected_size) are in the read models.
        CREATE TABLE projections (
            tenant_id TEXT NOT NULL PRIMARY KEY,
            projected_size INTEGER NOT NULL
        ) WITHOUT ROWID;
        """;

    // Version 2: entries the projector could not project (kept aside so that none stalls the rest), and the ranges it
    // handled ahead of a tenant's projected prefix (an outbox row re-queued at start can come after newer ones), so
    // projected_size only ever names a prefix in which every entry was handled.
    private const string Version2 = """
        CREATE TABLE dead_letters (
            tenant_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            error TEXT NOT NULL,
            first_seen INTEGER NOT NULL, -- UTC ticks
            last_seen INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, idx)
        ) WITHOUT ROWID;

        CREATE TABLE projection_ranges (
            tenant_id TEXT NOT NULL,
            first_idx INTEGER NOT NULL,
            last_idx INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, first_idx)
        ) WITHOUT ROWID;
        """;

    // Version 3: retention. A purge record's projection deletes the rows of the entries it purged: targets are found by
    // entry (one more index on a projected target), and the full-text index drops a deleted row's tokens from its
    // segments at once (FTS5 secure-delete) instead of keeping them until segments merge.
    private const string Version3 = """
        CREATE INDEX event_targets_entry ON event_targets (tenant_num, idx);
        INSERT INTO event_text (event_text, rank) VALUES ('secure-delete', 1);
        """;

    public static void Migrate(SqliteConnection connection) => SqliteSchema.Migrate(connection, [Version1, Version2, Version3]);
}
