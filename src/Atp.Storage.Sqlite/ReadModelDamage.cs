using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Atp.Storage.Sqlite;

/// <summary>
/// Damage to the read models' file (<c>atp-read.db</c>): how it is recognised, and moving the damaged file aside so a
/// new one can be projected from the log. The read models are derived data; the log file is never touched here.
/// </summary>
internal static partial class ReadModelDamage
{
    private const int SqliteCorrupt = 11;
    private const int SqliteNotADatabase = 26;

    /// <summary>SQLITE_CORRUPT or SQLITE_NOTADB (or SQLite's "malformed" wording under another code): the file is damaged.</summary>
    public static bool IsCorruption(Exception exception) =>
        exception is SqliteException e
        && ((e.SqliteErrorCode & 0xFF) is SqliteCorrupt or SqliteNotADatabase
            || e.Message.Contains("malformed", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A cheap check at start: a file shorter than the page count its header claims was truncated (SQLite itself would
    /// only notice when a query reaches a missing page). Only when no WAL is left over, whose frames may extend it.
    /// </summary>
    public static string? FindTruncation(SqliteConnection connection, string path)
    {
        if (File.Exists(path + "-wal") && new FileInfo(path + "-wal").Length > 0)
        {
            return null;
        }

        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA page_count";
        var pages = (long)command.ExecuteScalar()!;
        command.CommandText = "PRAGMA page_size";
        var pageSize = (long)command.ExecuteScalar()!;
        var length = new FileInfo(path).Length;
        return length < pages * pageSize ? $"the file holds {length} bytes, its header claims {pages} pages of {pageSize}" : null;
    }

    /// <summary>Renames the file and its WAL aside (kept for inspection); returns the new name of the file.</summary>
    public static string MoveAside(string path, DateTimeOffset now)
    {
        var aside = $"{path}.damaged-{now.UtcDateTime:yyyyMMddTHHmmssfffZ}";
        if (File.Exists(path))
        {
            File.Move(path, aside);
        }

        if (File.Exists(path + "-wal"))
        {
            File.Move(path + "-wal", aside + "-wal");
        }

        // The shared-memory index belongs to the old WAL and would be rebuilt from it anyway.
        File.Delete(path + "-shm");
        return aside;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The read models' file {Path} is damaged ({Reason}); it was moved aside to {Aside} and the read models are being rebuilt from the log. Ingest is not affected; searches answer 503 projection-rebuilding meanwhile")]
    public static partial void LogMovedAside(ILogger logger, string path, string reason, string aside);

    [LoggerMessage(Level = LogLevel.Error, Message = "The read models' file {Path} is damaged ({Reason}); it will be moved aside and rebuilt from the log")]
    public static partial void LogDamageDetected(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The read models in {Path} were rebuilt from the log: every tenant caught up with the log as it was when the damage was found")]
    public static partial void LogRebuilt(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Entry {Index} of tenant {TenantId} could not be projected and was set aside as a dead letter: {Error}")]
    public static partial void LogDeadLetter(ILogger logger, string tenantId, ulong index, string error);
}
