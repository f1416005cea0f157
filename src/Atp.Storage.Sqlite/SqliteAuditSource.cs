using System.Globalization;
using Atp.Core.Storage;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine's stored logs, read as they are on disk for the self-audit: <c>atp.db</c> opened read-only
/// (or, in the server, on its own read-only connection beside the store's), every read scoped to one tenant's rowid
/// range. Rows are read through SQLite's statement API so leaf bytes are hashed where SQLite holds them, not copied.
/// </summary>
public sealed class SqliteAuditSource : ILogAuditSource
{
    private readonly SqliteConnection _connection;
    private readonly Dictionary<string, long> _numbers = new(StringComparer.Ordinal);

    private SqliteAuditSource(SqliteConnection connection) => _connection = connection;

    /// <summary>Opens <c>atp.db</c> under <paramref name="dataDirectory"/> read-only; the file must exist.</summary>
    public static SqliteAuditSource Open(string dataDirectory)
    {
        var path = Path.Combine(Path.GetFullPath(dataDirectory), "atp.db");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No ATP database at {path}.", path);
        }

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
        return new SqliteAuditSource(connection);
    }

    public Task<IReadOnlyList<string>> ListTenantsAsync(CancellationToken cancellationToken)
    {
        var tenants = new List<string>();
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
        var db = _connection.Handle!;
        Check(db, raw.sqlite3_prepare_v2(db, "SELECT id, leaf, leaf_hash, nodes FROM log_entries WHERE id BETWEEN ?1 AND ?2 ORDER BY id", out var statement));
        try
        {
            Check(db, raw.sqlite3_bind_int64(statement, 1, first));
            Check(db, raw.sqlite3_bind_int64(statement, 2, last));
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

            if (step != raw.SQLITE_DONE)
            {
                Check(db, step);
            }
        }
        finally
        {
            raw.sqlite3_finalize(statement);
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    private long? NumberOf(string tenantId)
    {
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

    private static void Check(sqlite3 db, int code)
    {
        if (code is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE))
        {
            throw new SqliteException($"SQLite error {code} reading the log: {raw.sqlite3_errmsg(db).utf8_to_string()}", code);
        }
    }
}
