using System.Collections.Concurrent;
using System.Globalization;
using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine's stored logs, read as they are on disk for the self-audit: <c>atp.db</c> opened read-only
/// (or, in the server, on its own read-only connections beside the store's), every read scoped to one tenant's rowid
/// range. Rows are read through SQLite's statement API so leaf bytes are hashed where SQLite holds them, not copied;
/// scans that run at once (other ranges, other threads) each get a read-only connection of their own.
/// </summary>
public sealed class SqliteAuditSource : ILogAuditSource
{
    private readonly string _path;
    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _numbers = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<sqlite3> _idleScanners = [];

    private SqliteAuditSource(string path, SqliteConnection connection)
    {
        _path = path;
        _connection = connection;
    }

    /// <summary>Opens <c>atp.db</c> under <paramref name="dataDirectory"/> read-only; the file must exist.</summary>
    public static SqliteAuditSource Open(string dataDirectory)
    {
        var path = Path.Combine(Path.GetFullPath(dataDirectory), "atp.db");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No ATP database at {path}.", path);
        }

        return new SqliteAuditSource(path, OpenReadOnly(path));
    }

    public Task<IReadOnlyList<string>> ListTenantsAsync(CancellationToken cancellationToken)
    {
        var tenants = new List<string>();
        using var scope = _gate.EnterScope();
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT id, num FROM tenants ORDER BY id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            tenants.Add(reader.GetString(0));
            _numbers[reader.GetString(0)] = reader.GetInt64(1);
        }

        return Task.FromResult<IReadOnlyList<string>>(tenants);
    }

    public Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var scope = _gate.EnterScope();
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT size, root FROM tree_heads WHERE tenant_id = $t";
        command.Parameters.AddWithValue("$t", tenantId);
        using var reader = command.ExecuteReader();
        TreeHead? head = null;
        if (reader.Read())
        {
            var root = (byte[])reader[1];
            // A root of the wrong length is reported as a mismatch by the audit, not thrown: pad it so it compares unequal.
            head = new TreeHead((ulong)reader.GetInt64(0), root.Length == Hash.Size ? new Hash(root) : default);
        }

        return Task.FromResult(head);
    }

    public Task<IReadOnlyList<StoredCheckpoint>> ListCheckpointsAsync(string tenantId, CancellationToken cancellationToken)
    {
        var checkpoints = new List<StoredCheckpoint>();
        using var scope = _gate.EnterScope();
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT size, note, created_at FROM checkpoints WHERE tenant_id = $t ORDER BY size";
        command.Parameters.AddWithValue("$t", tenantId);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var created = DateTimeOffset.TryParse(reader.GetString(2), CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) ? at : DateTimeOffset.MinValue;
            checkpoints.Add(new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), created));
        }

        return Task.FromResult<IReadOnlyList<StoredCheckpoint>>(checkpoints);
    }

    public Task ScanAsync(string tenantId, ulong fromIndex, ulong toIndex, StoredRowVisitor visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (toIndex <= fromIndex || NumberOf(tenantId) is not { } number)
        {
            return Task.CompletedTask;
        }

        // rowid = (tenant num << 40) | index: the range holds this tenant's rows [fromIndex, toIndex) and nothing else.
        var first = LogRowId.Of(number, fromIndex);
        var last = LogRowId.Of(number, Math.Min(toIndex, LogRowId.MaxIndex + 1) - 1);
        if (!_idleScanners.TryTake(out var connection))
        {
            connection = OpenScanner(_path);
        }

        try
        {
            Scan(connection, first, last, visit, cancellationToken);
        }
        finally
        {
            _idleScanners.Add(connection);
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        while (_idleScanners.TryTake(out var connection))
        {
            connection.Dispose();
        }

        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    private long? NumberOf(string tenantId)
    {
        using var scope = _gate.EnterScope();
        if (_numbers.TryGetValue(tenantId, out var known))
        {
            return known;
        }

        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT num FROM tenants WHERE id = $t";
        command.Parameters.AddWithValue("$t", tenantId);
        if (command.ExecuteScalar() is not long number)
        {
            return null;
        }

        _numbers[tenantId] = number;
        return number;
    }

    // A scan connection is used by one thread at a time (taken from and returned to the bag), so it is opened without
    // SQLite's per-connection mutex, which every step and every column read would otherwise take and release.
    private static sqlite3 OpenScanner(string path)
    {
        var code = raw.sqlite3_open_v2(path, out var db, raw.SQLITE_OPEN_READONLY | raw.SQLITE_OPEN_NOMUTEX, null);
        try
        {
            Check(db, code);
            Check(db, raw.sqlite3_busy_timeout(db, 30_000));
            Check(db, raw.sqlite3_exec(db, "PRAGMA query_only=ON; PRAGMA mmap_size=1099511627776;"));
            return db;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    private static SqliteConnection OpenReadOnly(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        using var pragmas = connection.CreateCommand();
        // mmap: a whole-log scan then reads pages straight from the page cache instead of one read() call per page
        // (SQLite caps the size at its compile-time maximum).
        pragmas.CommandText = "PRAGMA busy_timeout=30000; PRAGMA query_only=ON; PRAGMA mmap_size=1099511627776;";
        pragmas.ExecuteNonQuery();
        return connection;
    }

    // One statement stepping the rowid range in key order (no sort); an empty leaf not marked purged (retention) is
    // handed on as one byte, so that the leaf check fails it rather than take it for a purged entry; each row's blobs are handed on as spans over
    // SQLite's own memory (the mapped page, for a row without overflow), so nothing is copied.
    private static void Scan(sqlite3 db, long first, long last, StoredRowVisitor visit, CancellationToken cancellationToken)
    {
        // A file written before retention (schema version 12) has no purged_by column, and no purged entry.
        var leaf = HasPurgedBy(db) ? "CASE WHEN length(leaf) = 0 AND purged_by IS NULL THEN X'00' ELSE leaf END" : "leaf";
        Check(db, raw.sqlite3_prepare_v2(db, $"SELECT id, {leaf}, leaf_hash, nodes FROM log_entries WHERE id BETWEEN ?1 AND ?2 ORDER BY id", out var statement));
        try
        {
            Check(db, raw.sqlite3_bind_int64(statement, 1, first));
            Check(db, raw.sqlite3_bind_int64(statement, 2, last));
            var step = SqliteAuditNative.IsAvailable ? StepNative(statement, visit, cancellationToken) : StepManaged(statement, visit, cancellationToken);
            if (step != raw.SQLITE_DONE)
            {
                Check(db, step);
            }
        }
        finally
        {
            raw.sqlite3_finalize(statement);
        }
    }

    private static bool HasPurgedBy(sqlite3 db)
    {
        Check(db, raw.sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('log_entries') WHERE name = 'purged_by'", out var statement));
        try
        {
            return raw.sqlite3_step(statement) == raw.SQLITE_ROW;
        }
        finally
        {
            raw.sqlite3_finalize(statement);
        }
    }

    private static int StepNative(sqlite3_stmt statement, StoredRowVisitor visit, CancellationToken cancellationToken)
    {
        var handle = statement.DangerousGetHandle();
        var rows = 0;
        int step;
        while ((step = SqliteAuditNative.Step(handle)) == raw.SQLITE_ROW)
        {
            if (++rows % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            visit(
                LogRowId.IndexOf(SqliteAuditNative.ColumnInt64(handle, 0)),
                SqliteAuditNative.ColumnBlob(handle, 1),
                SqliteAuditNative.ColumnBlob(handle, 2),
                SqliteAuditNative.ColumnBlob(handle, 3));
        }

        return step;
    }

    private static int StepManaged(sqlite3_stmt statement, StoredRowVisitor visit, CancellationToken cancellationToken)
    {
        var rows = 0;
        int step;
        while ((step = raw.sqlite3_step(statement)) == raw.SQLITE_ROW)
        {
            if (++rows % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            visit(
                LogRowId.IndexOf(raw.sqlite3_column_int64(statement, 0)),
                raw.sqlite3_column_blob(statement, 1),
                raw.sqlite3_column_blob(statement, 2),
                raw.sqlite3_column_blob(statement, 3));
        }

        return step;
    }

    private static void Check(sqlite3 db, int code)
    {
        if (code is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE))
        {
            throw new SqliteException($"SQLite error {code} reading the log: {raw.sqlite3_errmsg(db).utf8_to_string()}", code);
        }
    }
}
