using Atp.Core.Storage;
using Atp.Integrity;
using Npgsql;
using NpgsqlTypes;

namespace Atp.Storage.Postgres;

/// <summary>
/// Writes append requests inside the sequencer's transaction, each in its own savepoint. A request with an
/// Idempotency-Key or client-assigned event ids takes two round trips: savepoint + lookups, then its writes. Requests
/// without (the common case) need no lookup, so a run of them is sent as one pipelined batch. Writes are every new
/// entry in one multi-row INSERT (arrays unnested server-side) + outbox row (+ Idempotency-Key). Statements are
/// prepared once per connection (auto-prepare).
/// </summary>
internal sealed class AppendWriter(NpgsqlConnection connection)
{
    private const string InsertEntries = """
        INSERT INTO atp.log_entries (tenant_id, idx, event_id, leaf_hash, nodes, received_at, leaf)
        SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bytea[])
        """;

    private const string Savepoint = "SAVEPOINT append_request";
    private const string Release = "RELEASE SAVEPOINT append_request";
    private static readonly Dictionary<Guid, StoredEvent> NothingStored = [];

    private readonly List<MerkleNode> _completed = new(64);

    public NpgsqlConnection Connection => connection;

    /// <summary>Whether the request must read the log before it can be staged (replays and re-sends).</summary>
    public static bool NeedsLookups(AppendRequest request) =>
        request.Idempotency is not null || request.DataKeys.Count > 0 || request.ReplayOnly is not null || request.DestroyedDataKeys.Count > 0 || request.Purge is not null
        || request.Entries.Any(e => e.ClientAssignedId);

    /// <summary>
    /// Stages a request that needs no lookup on <paramref name="tree"/> and adds its statements (savepoint, tenant,
    /// writes, release) to <paramref name="batch"/>; a refused request adds none. Returns its outcome.
    /// </summary>
    public AppendOutcome StageInto(NpgsqlBatch batch, AppendRequest request, CompactRange tree, long now)
    {
        var outcome = Stage(request, NothingStored, tree, out var rows);
        if (outcome is Appended appended)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(Savepoint));
            batch.BatchCommands.Add(TenantScope.SetTenant(request.TenantId));
            AddWrites(batch, request, appended, rows, tree, now);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(Release));
        }

        return outcome;
    }

    /// <summary>
    /// Stages requests of one tenant that need no lookup on <paramref name="tree"/>, in order, and adds one INSERT of all
    /// their entries and one outbox row for the whole range to <paramref name="batch"/> (the tenant is already set). No
    /// savepoints: the caller sends these only where a failure rolls back the whole transaction. Sets each outcome.
    /// </summary>
    public void StageTenantInto(NpgsqlBatch batch, string tenantId, IReadOnlyList<PendingAppend> requests, CompactRange tree)
    {
        var count = requests.Sum(p => p.Request.Entries.Count);
        var rows = new EntryRows(count, (long)tree.Size);
        foreach (var pending in requests)
        {
            var entries = pending.Request.Entries;
            var receipts = new Receipt[entries.Count];
            for (var i = 0; i < entries.Count; i++)
            {
                receipts[i] = AppendEntry(rows, entries[i], tree);
            }

            pending.Outcome = new Appended(receipts, Replayed: false);
        }

        if (count > 0)
        {
            AddEntriesAndOutbox(batch, tenantId, rows, tree);
        }
    }

    /// <summary>Applies the request to <paramref name="tree"/> (the tenant's staged tree) and writes it; the savepoint is released on return.</summary>
    public async Task<AppendOutcome> ApplyAsync(AppendRequest request, CompactRange tree, long now)
    {
        var tenantId = request.TenantId;
        var clientIds = request.Entries.Where(e => e.ClientAssignedId).Select(e => e.EventId).ToArray();
        await using var lookups = TenantScope.Batch(connection, tenantId);
        lookups.BatchCommands.Insert(0, new NpgsqlBatchCommand(Savepoint));
        if (request.Idempotency is { } claim)
        {
            lookups.BatchCommands.Add(TenantScope.Command(
                "SELECT request_hash, receipt_ids, receipt_indexes, receipt_leaf_hashes FROM atp.idempotency_keys WHERE tenant_id = $1 AND key = $2",
                tenantId, claim.Key));
        }

        if (clientIds.Length > 0)
        {
            lookups.BatchCommands.Add(TenantScope.Command(
                "SELECT event_id, idx, leaf_hash, leaf FROM atp.log_entries WHERE tenant_id = $1 AND event_id = ANY($2)", tenantId, clientIds));
        }

        var keyIds = request.DataKeys.Select(k => k.KeyId).ToArray();
        if (keyIds.Length > 0)
        {
            lookups.BatchCommands.Add(TenantScope.Command(
                "SELECT key_id, wrapped FROM atp.data_keys WHERE tenant_id = $1 AND key_id = ANY($2)", tenantId, keyIds));
        }

        AppendOutcome? early = null;
        var existing = new Dictionary<Guid, StoredEvent>();
        var storedKeys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await using (var reader = await lookups.ExecuteReaderAsync().ConfigureAwait(false))
        {
            // The reader starts on the first statement that returns rows (set_config; SAVEPOINT returns none).
            await reader.NextResultAsync().ConfigureAwait(false);
            if (request.Idempotency is { } used)
            {
                if (await reader.ReadAsync().ConfigureAwait(false))
                {
                    early = new Hash((byte[])reader[0]) == used.RequestHash
                        ? new Appended(StoredReceipts(reader), Replayed: true)
                        : new IdempotencyKeyReused(used.Key);
                }

                await reader.NextResultAsync().ConfigureAwait(false);
            }

            if (clientIds.Length > 0)
            {
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    existing[reader.GetGuid(0)] = new StoredEvent((ulong)reader.GetInt64(1), new Hash((byte[])reader[2]), (byte[])reader[3]);
                }

                await reader.NextResultAsync().ConfigureAwait(false);
            }

            if (keyIds.Length > 0)
            {
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    storedKeys[reader.GetString(0)] = (byte[])reader[1];
                }
            }
        }

        EntryRows? rows = null;
        var outcome = early ?? Stage(request, existing, tree, out rows);
        await using var writes = new NpgsqlBatch(connection);
        if (early is null && outcome is Appended appended)
        {
            AddDataKeys(writes, request, storedKeys, now);
            AddDestroyedDataKeys(writes, request);
            AddWrites(writes, request, appended, rows, tree, now);
            AddPurge(writes, request, appended);
        }

        writes.BatchCommands.Add(new NpgsqlBatchCommand(Release));
        await writes.ExecuteNonQueryAsync().ConfigureAwait(false);
        return outcome;
    }

    /// <summary>Undoes the request's writes after a failure, leaving the rest of the transaction as it was.</summary>
    public async Task UndoRequestAsync()
    {
        await using var undo = new NpgsqlBatch(connection)
        {
            BatchCommands = { new NpgsqlBatchCommand("ROLLBACK TO SAVEPOINT append_request"), new NpgsqlBatchCommand("RELEASE SAVEPOINT append_request") },
        };
        await undo.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    /// <summary>Moves every staged tenant's head to its new size and root, and commits (the reply comes after the WAL flush).</summary>
    public async Task UpdateHeadsAndCommitAsync(Dictionary<string, CompactRange> staged)
    {
        await using var batch = new NpgsqlBatch(connection);
        AddHeadUpdatesAndCommit(batch, staged);
        await batch.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    /// <summary>Adds the head updates of every staged tenant and the COMMIT to <paramref name="batch"/>; returns the index of the first command added.</summary>
    public static int AddHeadUpdatesAndCommit(NpgsqlBatch batch, Dictionary<string, CompactRange> staged)
    {
        var first = batch.BatchCommands.Count;
        foreach (var (tenantId, tree) in staged)
        {
            batch.BatchCommands.Add(TenantScope.SetTenant(tenantId));
            AddHeadUpdate(batch, tenantId, tree);
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        return first;
    }

    /// <summary>Moves the tenant's head (locked, tenant set) to where <paramref name="tree"/> ends.</summary>
    public static void AddHeadUpdate(NpgsqlBatch batch, string tenantId, CompactRange tree) =>
        batch.BatchCommands.Add(TenantScope.Command("UPDATE atp.tree_heads SET size = $2, root = $3 WHERE tenant_id = $1", tenantId, (long)tree.Size, tree.Root().ToArray()));

    // Re-sent events keep their original receipt (ResentEvents); the new ones get the next indexes of the tree.
    private AppendOutcome Stage(AppendRequest request, Dictionary<Guid, StoredEvent> existing, CompactRange tree, out EntryRows? rows)
    {
        rows = null;
        var receipts = new Receipt?[request.Entries.Count];
        if (ResentEvents.Match(request.Entries, id => existing.TryGetValue(id, out var stored) ? stored : null, receipts) is { } conflict)
        {
            return conflict;
        }

        var fresh = receipts.Count(r => r is null);
        if (request.ReplayOnly is { } overQuota && fresh > 0)
        {
            return overQuota;
        }

        if (fresh > 0)
        {
            rows = new EntryRows(fresh, (long)tree.Size);
            for (var i = 0; i < request.Entries.Count; i++)
            {
                receipts[i] ??= AppendEntry(rows, request.Entries[i], tree);
            }
        }

        return new Appended(receipts.Select(r => r!).ToArray(), Replayed: fresh == 0);
    }

    // The entry becomes the tree's next leaf and a row of the INSERT; its receipt names that index.
    private Receipt AppendEntry(EntryRows rows, PendingEntry entry, CompactRange tree)
    {
        var index = tree.Size;
        _completed.Clear();
        tree.Append(entry.LeafHash, _completed);
        rows.Add(index, entry, _completed);
        return new Receipt(entry.EventId, index, entry.LeafHash);
    }

    // The new entries and their outbox row, and the Idempotency-Key (even when every event was a re-send: the key now
    // stands for these receipts). The tenant is already set in the transaction.
    private static void AddWrites(NpgsqlBatch batch, AppendRequest request, Appended appended, EntryRows? rows, CompactRange tree, long now)
    {
        if (rows is not null)
        {
            AddEntriesAndOutbox(batch, request.TenantId, rows, tree);
        }

        AddIdempotencyKey(batch, request, appended.Receipts, now);
    }

    // A key another request of this transaction (or an earlier one) stored with the same bytes is kept. Any other is
    // inserted plainly: if a concurrent node stored a different key under the id, the primary key fails this request
    // rather than let its fields be sealed under a key that is never stored.
    private static void AddDataKeys(NpgsqlBatch batch, AppendRequest request, Dictionary<string, byte[]> storedKeys, long now)
    {
        foreach (var key in request.DataKeys)
        {
            if (storedKeys.TryGetValue(key.KeyId, out var stored) && stored.AsSpan().SequenceEqual(key.Wrapped))
            {
                continue;
            }

            batch.BatchCommands.Add(TenantScope.Command(
                "INSERT INTO atp.data_keys (tenant_id, key_id, wrapped, created_at) VALUES ($1, $2, $3, $4)", request.TenantId, key.KeyId, key.Wrapped, now));
        }
    }

    // An erasure: its keys go in the transaction of its tombstone, so a crash keeps both or neither.
    // After the purge record's INSERT, in the request's savepoint: a purge and its record commit together or not at all.
    private static void AddPurge(NpgsqlBatch batch, AppendRequest request, Appended appended)
    {
        if (request.Purge is not { } purge || appended.Replayed)
        {
            return;
        }

        if (appended.Receipts is not [var record])
        {
            throw new InvalidOperationException("A purge is appended with exactly one new entry, its purge record.");
        }

        batch.BatchCommands.Add(TenantScope.Command(
            "SELECT atp.purge_entries($1, $2, $3, $4)", request.TenantId, purge.Indexes.Select(i => (long)i).ToArray(), (long)record.Index, purge.Bytes));
    }

    private static void AddDestroyedDataKeys(NpgsqlBatch batch, AppendRequest request)
    {
        if (request.DestroyedDataKeys.Count > 0)
        {
            batch.BatchCommands.Add(TenantScope.Command(
                "DELETE FROM atp.data_keys WHERE tenant_id = $1 AND key_id = ANY($2)", request.TenantId, request.DestroyedDataKeys.ToArray()));
        }
    }

    private static void AddEntriesAndOutbox(NpgsqlBatch batch, string tenantId, EntryRows rows, CompactRange tree)
    {
        batch.BatchCommands.Add(rows.Command(tenantId));
        batch.BatchCommands.Add(TenantScope.Command(
            "INSERT INTO atp.outbox (tenant_id, first_idx, last_idx, received_at) VALUES ($1, $2, $3, $4)",
            tenantId, rows.FirstIndex, (long)tree.Size - 1, rows.FirstReceivedAt));

        // In the same savepoint (or savepoint-less transaction) as the entries, so the counter the storage quotas read
        // never disagrees with the committed leaves; the head row is already locked by this transaction.
        batch.BatchCommands.Add(TenantScope.Command(
            "UPDATE atp.tree_heads SET stored_bytes = stored_bytes + $2 WHERE tenant_id = $1", tenantId, rows.Bytes));
    }

    private static void AddIdempotencyKey(NpgsqlBatch batch, AppendRequest request, IReadOnlyList<Receipt> receipts, long now)
    {
        if (request.Idempotency is not { } claim)
        {
            return;
        }

        batch.BatchCommands.Add(TenantScope.Command(
            """
            INSERT INTO atp.idempotency_keys (tenant_id, key, request_hash, receipt_ids, receipt_indexes, receipt_leaf_hashes, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            request.TenantId, claim.Key, claim.RequestHash.ToArray(), receipts.Select(r => r.Id).ToArray(),
            receipts.Select(r => (long)r.Index).ToArray(), receipts.Select(r => r.LeafHash.ToArray()).ToArray(), now));
    }

    private static Receipt[] StoredReceipts(NpgsqlDataReader reader)
    {
        var ids = reader.GetFieldValue<Guid[]>(1);
        var indexes = reader.GetFieldValue<long[]>(2);
        var hashes = reader.GetFieldValue<byte[][]>(3);
        return ids.Select((id, i) => new Receipt(id, (ulong)indexes[i], new Hash(hashes[i]))).ToArray();
    }

    /// <summary>The new rows of one request as column arrays, for one multi-row INSERT.</summary>
    private sealed class EntryRows(int count, long firstIndex)
    {
        private readonly long[] _indexes = new long[count];
        private readonly Guid[] _eventIds = new Guid[count];
        private readonly byte[][] _leafHashes = new byte[count][];
        private readonly byte[]?[] _nodes = new byte[count][];
        private readonly long[] _receivedAt = new long[count];
        private readonly byte[][] _leaves = new byte[count][];
        private int _count;

        public long FirstIndex => firstIndex;

        /// <summary>The byte length of every leaf added.</summary>
        public long Bytes { get; private set; }

        public long FirstReceivedAt => _receivedAt[0];

        public void Add(ulong index, PendingEntry entry, List<MerkleNode> completed)
        {
            _indexes[_count] = (long)index;
            _eventIds[_count] = entry.EventId;
            _leafHashes[_count] = entry.LeafHash.ToArray();

            // completed[0] is the leaf itself; levels 1.. are the perfect subtrees that this leaf closed.
            if (completed.Count > 1)
            {
                var nodes = new byte[(completed.Count - 1) * Hash.Size];
                for (var i = 1; i < completed.Count; i++)
                {
                    completed[i].Hash.CopyTo(nodes.AsSpan((i - 1) * Hash.Size));
                }

                _nodes[_count] = nodes;
            }

            _receivedAt[_count] = entry.ReceivedAt.UtcTicks;
            _leaves[_count] = entry.Leaf;
            Bytes += entry.Leaf.Length;
            _count++;
        }

        public NpgsqlBatchCommand Command(string tenantId) => new(InsertEntries)
        {
            Parameters =
            {
                new NpgsqlParameter { Value = tenantId, NpgsqlDbType = NpgsqlDbType.Text },
                new NpgsqlParameter { Value = _indexes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
                new NpgsqlParameter { Value = _eventIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid },
                new NpgsqlParameter { Value = _leafHashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea },
                new NpgsqlParameter { Value = _nodes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea },
                new NpgsqlParameter { Value = _receivedAt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
                new NpgsqlParameter { Value = _leaves, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea },
            },
        };
    }
}
