using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>The sequencer's prepared statements, reused across commits (parsing SQL per row would dominate the cost).</summary>
internal sealed class BatchWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly List<MerkleNode> _completed = new(64);
    private readonly SqliteCommand _insertEntry;
    private readonly SqliteCommand _insertNode;
    private readonly SqliteCommand _insertOutbox;
    private readonly SqliteCommand _updateHead;
    private readonly SqliteCommand _findEvent;
    private readonly SqliteCommand _findKey;
    private readonly SqliteCommand _insertKey;

    public BatchWriter(SqliteConnection connection)
    {
        _connection = connection;
        _insertEntry = Prepare(
            "INSERT INTO log_entries (tenant_id, idx, event_id, leaf_hash, received_at, leaf) VALUES ($t, $i, $e, $h, $r, $l)",
            "$t", "$i", "$e", "$h", "$r", "$l");
        _insertNode = Prepare("INSERT INTO merkle_nodes (tenant_id, level, idx, hash) VALUES ($t, $v, $i, $h)", "$t", "$v", "$i", "$h");
        _insertOutbox = Prepare("INSERT INTO outbox (tenant_id, first_idx, last_idx) VALUES ($t, $f, $l)", "$t", "$f", "$l");
        _updateHead = Prepare("UPDATE tree_heads SET size = $s, root = $r WHERE tenant_id = $t", "$t", "$s", "$r");
        _findEvent = Prepare("SELECT idx, leaf_hash, leaf FROM log_entries WHERE tenant_id = $t AND event_id = $e", "$t", "$e");
        _findKey = Prepare("SELECT request_hash, receipts FROM idempotency_keys WHERE tenant_id = $t AND key = $k", "$t", "$k");
        _insertKey = Prepare("INSERT INTO idempotency_keys (tenant_id, key, request_hash, receipts, created_at) VALUES ($t, $k, $h, $r, $c)", "$t", "$k", "$h", "$r", "$c");
    }

    public void Bind(SqliteTransaction transaction)
    {
        foreach (var command in Commands())
        {
            command.Transaction = transaction;
        }
    }

    /// <summary>Runs a statement without parameters inside the bound transaction (savepoints).</summary>
    public void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.Transaction = _insertEntry.Transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void AppendEntry(string tenantId, ulong index, PendingEntry entry, CompactRange tree)
    {
        var eventId = entry.EventId.ToByteArray(bigEndian: true);
        Run(_insertEntry, tenantId, (long)index, eventId, entry.LeafHash.ToArray(), entry.ReceivedAt.ToString("O"), entry.Leaf);
        _completed.Clear();
        tree.Append(entry.LeafHash, _completed);

        // Level 0 is the leaf hash already in log_entries; only interior nodes go to merkle_nodes.
        for (var i = 1; i < _completed.Count; i++)
        {
            var node = _completed[i];
            Run(_insertNode, tenantId, (long)node.Id.Level, (long)node.Id.Index, node.Hash.ToArray());
        }
    }

    /// <summary>Records in the outbox that entries [first, last] of a tenant were appended.</summary>
    public void AddOutboxRange(string tenantId, ulong first, ulong last) => Run(_insertOutbox, tenantId, (long)first, (long)last);

    public void UpdateTreeHead(string tenantId, ulong size, Hash root) => Run(_updateHead, tenantId, (long)size, root.ToArray());

    public (ulong Index, Hash LeafHash, byte[] Leaf)? FindEvent(string tenantId, Guid eventId)
    {
        SetParameters(_findEvent, tenantId, eventId.ToByteArray(bigEndian: true));
        using var reader = _findEvent.ExecuteReader();
        return reader.Read()
            ? ((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]), (byte[])reader[2])
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

    /// <summary>The committed tree of a tenant, rebuilt from its head and O(log n) edge nodes; null without a log.</summary>
    public CompactRange? LoadTree(string tenantId)
    {
        using var head = _connection.CreateCommand();
        head.Transaction = _insertEntry.Transaction;
        head.CommandText = "SELECT size FROM tree_heads WHERE tenant_id = $t";
        head.Parameters.AddWithValue("$t", tenantId);
        if (head.ExecuteScalar() is not long size)
        {
            return null;
        }

        var ids = CompactRange.EdgeNodes((ulong)size);
        var edge = new Hash[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            edge[i] = SqliteNodeReader.ReadNode(_connection, _insertEntry.Transaction, tenantId, ids[i])
                ?? throw new InvalidOperationException($"Tenant '{tenantId}' is missing Merkle node {ids[i]}: the store is corrupt.");
        }

        return new CompactRange((ulong)size, edge);
    }

    public void Dispose()
    {
        foreach (var command in Commands())
        {
            command.Dispose();
        }
    }

    private SqliteCommand[] Commands() => [_insertEntry, _insertNode, _insertOutbox, _updateHead, _findEvent, _findKey, _insertKey];

    private SqliteCommand Prepare(string sql, params string[] names)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in names)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
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
