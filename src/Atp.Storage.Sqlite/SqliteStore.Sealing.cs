using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Sqlite;

public sealed partial class SqliteStore
{
    /// <summary>
    /// Seals the tenants' logs with one commit (one WAL fsync) for all their checkpoints, instead of one per tenant. The
    /// heads are read first, each as committed (a commit is visible to other connections only after its fsync, so
    /// every head read is durable); the notes are then written in one transaction in the write connection's turn. A
    /// checkpoint goes in only while none of the same or a larger size exists, so a tenant's latest never goes back.
    /// </summary>
    public async Task<int> SealManyAsync(
        IReadOnlyList<string> tenantIds, Func<string, TreeHead, CancellationToken, Task<string?>> sign, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenantIds);
        ArgumentNullException.ThrowIfNull(sign);
        var heads = await ReadUnsealedHeadsAsync(tenantIds, cancellationToken).ConfigureAwait(false);
        var notes = new List<(string TenantId, ulong Size, string Note)>(heads.Count);
        foreach (var (tenantId, head) in heads)
        {
            // The fork and rollback checks run per tenant in the signer; a refused head skips that tenant only.
            if (await sign(tenantId, head, cancellationToken).ConfigureAwait(false) is { } note)
            {
                notes.Add((tenantId, head.Size, note));
            }
        }

        if (notes.Count == 0)
        {
            return 0;
        }

        // The write connection's turn, not a pooled connection: a second writing connection would wait in SQLite's busy
        // handler behind the sequencer, and its commit would empty the write connection's page cache.
        using var turn = await _writeConnection.TakeAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = turn.Connection.BeginTransaction();
        using var insert = turn.Connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO checkpoints (tenant_id, size, note, created_at)
            SELECT $t, $s, $n, $c WHERE NOT EXISTS (SELECT 1 FROM checkpoints WHERE tenant_id = $t AND size >= $s)
            """;
        var tenant = insert.Parameters.Add("$t", Microsoft.Data.Sqlite.SqliteType.Text);
        var size = insert.Parameters.Add("$s", Microsoft.Data.Sqlite.SqliteType.Integer);
        var text = insert.Parameters.Add("$n", Microsoft.Data.Sqlite.SqliteType.Text);
        insert.Parameters.AddWithValue("$c", createdAt.ToString("O"));
        var stored = 0;
        foreach (var note in notes)
        {
            tenant.Value = note.TenantId;
            size.Value = (long)note.Size;
            text.Value = note.Note;
            stored += await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return stored;
    }

    // The committed heads of those tenants that no checkpoint covers yet, in one read snapshot.
    private async Task<List<(string TenantId, TreeHead Head)>> ReadUnsealedHeadsAsync(IReadOnlyList<string> tenantIds, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var snapshot = connection.BeginTransaction(deferred: true);
        using var read = connection.CreateCommand();
        read.Transaction = snapshot;
        read.CommandText = """
            SELECT h.size, h.root FROM tree_heads h WHERE h.tenant_id = $t
            AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.tenant_id = h.tenant_id AND c.size >= h.size)
            """;
        var tenant = read.Parameters.Add("$t", Microsoft.Data.Sqlite.SqliteType.Text);
        var heads = new List<(string, TreeHead)>(tenantIds.Count);
        foreach (var tenantId in tenantIds)
        {
            tenant.Value = tenantId;
            using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                heads.Add((tenantId, new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]))));
            }
        }

        return heads;
    }
}
