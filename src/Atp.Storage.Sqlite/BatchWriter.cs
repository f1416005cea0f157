using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>The sequencer's prepared statements, reused across commits (parsing SQL per row would dominate the cost).</summary>
internal sealed class BatchWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly TenantNumbers _tenantNumbers;
    private readonly List<MerkleNode> _completed = new(64);
    private readonly RawInsert _insertEntry;
    private readonly SqliteCommand _insertOutbox;
    private readonly SqliteCommand _deleteOutbox;
    private readonly SqliteCommand _updateHead;
    private readonly SqliteCommand _addStoredBytes;
    private readonly SqliteCommand _findEvent;
    private readonly SqliteCommand _findKey;
    private readonly SqliteCommand _insertKey;
    private readonly SqliteCommand _findDataKey;
    private readonly SqliteCommand _insertDataKey;
    private readonly SqliteCommand _deleteDataKey;
    private readonly SqliteCommand _purgeEntry;
    private readonly SqliteCommand _savepoint;
    private readonly SqliteCommand _release;
    private readonly SqliteCommand _rollbackTo;
    private SqliteTransaction? _transaction;

    public BatchWriter(SqliteConnection connection, TenantNumbers tenantNumbers)
    {
        _connection = connection;
        _tenantNumbers = tenantNumbers;
        _insertEntry = new RawInsert(connection, "INSERT INTO log_entries (id, event_id, leaf_hash, nodes, received_at, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
        _insertOutbox = Prepare("INSERT INTO outbox (tenant_id, first_idx, last_idx) VALUES ($1, $2, $3)", 3);
        _deleteOutbox = Prepare("DELETE FROM outbox WHERE id <= $1", 1);
        _updateHead = Prepare("UPDATE tree_heads SET size = $2, root = $3 WHERE tenant_id = $1", 3);
        _addStoredBytes = Prepare("UPDATE tree_heads SET stored_bytes = stored_bytes + $2 WHERE tenant_id = $1", 2);
        _findEvent = Prepare("SELECT id, leaf_hash, leaf FROM log_entries WHERE event_id = $1 AND id BETWEEN $2 AND $3", 3);
        _findKey = Prepare("SELECT request_hash, receipts FROM idempotency_keys WHERE tenant_id = $1 AND key = $2", 2);
        _insertKey = Prepare("INSERT INTO idempotency_keys (tenant_id, key, request_hash, receipts, created_at) VALUES ($1, $2, $3, $4, $5)", 5);
        _findDataKey = Prepare("SELECT wrapped FROM data_keys WHERE tenant_id = $1 AND key_id = $2", 2);
        _insertDataKey = Prepare("INSERT INTO data_keys (tenant_id, key_id, wrapped, created_at) VALUES ($1, $2, $3, $4)", 4);
        _deleteDataKey = Prepare("DELETE FROM data_keys WHERE tenant_id = $1 AND key_id = $2", 2);
        _purgeEntry = Prepare("UPDATE log_entries SET leaf = X'', purged_by = $2 WHERE id = $1 AND purged_by IS NULL", 2);
        _savepoint = Prepare("SAVEPOINT append_request", 0);
        _release = Prepare("RELEASE append_request", 0);
        _rollbackTo = Prepare("ROLLBACK TO append_request", 0);
    }

    public void Bind(SqliteTransaction transaction)
    {
        _transaction = transaction;
        foreach (var command in Commands())
        {
            command.Transaction = transaction;
        }
    }

    /// <summary>Opens a savepoint around one append request.</summary>
    public void BeginRequest() => _savepoint.ExecuteNonQuery();

    /// <summary>Keeps the request's writes in the transaction.</summary>
    public void EndRequest() => _release.ExecuteNonQuery();

    /// <summary>Undoes the request's writes, leaving the rest of the transaction as it was.</summary>
    public void UndoRequest()
    {
        _rollbackTo.ExecuteNonQuery();
        _release.ExecuteNonQuery();
    }

    /// <summary>Appends one leaf: its row carries the leaf, its hash and every interior node it completes.</summary>
    public void AppendEntry(long tenantNumber, ulong index, PendingEntry entry, CompactRange tree)
    {
        _completed.Clear();
        tree.Append(entry.LeafHash, _completed);

        Span<byte> eventId = stackalloc byte[16];
        entry.EventId.TryWriteBytes(eventId, bigEndian: true, out _);
        _insertEntry.Int64(1, LogRowId.Of(tenantNumber, index)).Blob(2, eventId).Blob(3, entry.LeafHash.AsSpan());

        // _completed[0] is the leaf itself; levels 1.. are the perfect subtrees that this leaf closed.
        if (_completed.Count > 1)
        {
            Span<byte> nodes = stackalloc byte[(_completed.Count - 1) * Hash.Size];
            for (var i = 1; i < _completed.Count; i++)
            {
                _completed[i].Hash.CopyTo(nodes[((i - 1) * Hash.Size)..]);
            }

            _insertEntry.Blob(4, nodes);
        }
        else
        {
            _insertEntry.Null(4);
        }

        _insertEntry.Int64(5, entry.ReceivedAt.UtcTicks).Blob(6, entry.Leaf).Execute();
    }

    /// <summary>Records in the outbox that entries [first, last] of a tenant were appended.</summary>
    public void AddOutboxRange(string tenantId, ulong first, ulong last) => Run(_insertOutbox, tenantId, (long)first, (long)last);

    /// <summary>Deletes the outbox rows the projector has handled (see <see cref="OutboxProgress"/>).</summary>
    public void DeleteOutboxThrough(long id) => Run(_deleteOutbox, id);

    public void UpdateTreeHead(string tenantId, ulong size, Hash root) => Run(_updateHead, tenantId, (long)size, root.ToArray());

    /// <summary>Adds the leaf bytes a request appended to the tenant's stored bytes, inside the request's savepoint.</summary>
    public void AddStoredBytes(string tenantId, long bytes) => Run(_addStoredBytes, tenantId, bytes);

    public StoredEvent? FindEvent(long tenantNumber, Guid eventId)
    {
        SetParameters(_findEvent, eventId.ToByteArray(bigEndian: true), LogRowId.First(tenantNumber), LogRowId.Last(tenantNumber));
        using var reader = _findEvent.ExecuteReader();
        return reader.Read()
            ? new StoredEvent(LogRowId.IndexOf(reader.GetInt64(0)), new Hash((byte[])reader[1]), (byte[])reader[2])
            : null;
    }

    public (Hash RequestHash, string Receipts)? FindIdempotencyKey(string tenantId, string key)
    {
        SetParameters(_findKey, tenantId, key);
        using var reader = _findKey.ExecuteReader();
        return reader.Read() ? (new Hash((byte[])reader[0]), reader.GetString(1)) : null;
    }

    public void InsertIdempotencyKey(string tenantId, IdempotencyClaim claim, string receipts, long now) =>
        Run(_insertKey, tenantId, claim.Key, claim.RequestHash.ToArray(), receipts, now);

    /// <summary>
    /// Stores a data key the request's entries are sealed under, unless the same key is stored already (another request
    /// of this group commit may have carried it too); a different key under the same id fails the request.
    /// </summary>
    public void InsertDataKey(string tenantId, Core.Classification.WrappedDataKey key, long now)
    {
        SetParameters(_findDataKey, tenantId, key.KeyId);
        if (_findDataKey.ExecuteScalar() is byte[] stored)
        {
            if (!stored.AsSpan().SequenceEqual(key.Wrapped))
            {
                throw new InvalidOperationException("Another data key is already stored under this key id; the request's fields are sealed under a key that would be lost.");
            }

            return;
        }

        Run(_insertDataKey, tenantId, key.KeyId, key.Wrapped, now);
    }

    /// <summary>Destroys a data key (an erasure); the connection's secure_delete zeroes the row's bytes in its page.</summary>
    public void DeleteDataKey(string tenantId, string keyId) => Run(_deleteDataKey, tenantId, keyId);

    /// <summary>
    /// Removes an entry's content (retention): an empty leaf and the purge record's index; the leaf hash and nodes stay,
    /// and secure_delete zeroes the old bytes in the page. False when the entry is purged already (or not stored).
    /// </summary>
    public bool PurgeEntry(long tenantNumber, ulong index, ulong purgedBy)
    {
        SetParameters(_purgeEntry, LogRowId.Of(tenantNumber, index), (long)purgedBy);
        return _purgeEntry.ExecuteNonQuery() == 1;
    }

    public long? TenantNumber(string tenantId) => _tenantNumbers.Find(_connection, _transaction, tenantId);

    /// <summary>
    /// The committed head of a tenant and its tree rebuilt from the O(log n) stored edge nodes (null when an edge node is
    /// missing, which is then named); null without a log. The caller checks the tree against the head.
    /// </summary>
    public (CompactRange? Tree, TreeHead Head, NodeId? Missing)? LoadTree(string tenantId, long tenantNumber)
    {
        using var read = _connection.CreateCommand();
        read.Transaction = _transaction;
        read.CommandText = "SELECT size, root FROM tree_heads WHERE tenant_id = $t";
        read.Parameters.AddWithValue("$t", tenantId);
        TreeHead head;
        using (var reader = read.ExecuteReader())
        {
            if (!reader.Read())
            {
                return null;
            }

            head = new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]));
        }

        var ids = CompactRange.EdgeNodes(head.Size);
        var edge = new Hash[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            if (SqliteNodeReader.ReadNode(_connection, _transaction, tenantNumber, ids[i]) is not { } node)
            {
                return (null, head, ids[i]);
            }

            edge[i] = node;
        }

        return (new CompactRange(head.Size, edge), head, null);
    }

    public void Dispose()
    {
        _insertEntry.Dispose();
        foreach (var command in Commands())
        {
            command.Dispose();
        }
    }

    private SqliteCommand[] Commands() => [_insertOutbox, _deleteOutbox, _updateHead, _addStoredBytes, _findEvent, _findKey, _insertKey, _findDataKey, _insertDataKey, _deleteDataKey, _purgeEntry, _savepoint, _release, _rollbackTo];

    // Positional parameters ($1, $2, …) set by ordinal: binding by name showed up in profiles of the hot path.
    private SqliteCommand Prepare(string sql, int parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 1; i <= parameters; i++)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = "$" + i });
        }

        return command;
    }

    private static void Run(SqliteCommand command, params object[] values)
    {
        SetParameters(command, values);
        command.ExecuteNonQuery();
    }

    private static void SetParameters(SqliteCommand command, params object[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i];
        }
    }
}
