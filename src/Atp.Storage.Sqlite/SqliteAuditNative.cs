using System.Reflection;
using System.Runtime.InteropServices;
using SQLitePCL;

namespace Atp.Storage.Sqlite;

/// <summary>
/// SQLite's row accessors as plain function pointers into the e_sqlite3 library that SQLitePCL already loaded, for the
/// self-audit's full scans. Through SQLitePCL each accessor is a P/Invoke that marshals the statement's SafeHandle
/// (reference count up and down) and switches GC mode; a row of the audit needs eight of them, which cost more than
/// SQLite's own work for the row. The column accessors only return what <c>sqlite3_step</c> already decoded into the
/// row, so they are called without the GC transition (the documented condition: short, no blocking, no callbacks);
/// the step itself may read from disk and keeps the transition.
/// </summary>
internal static unsafe class SqliteAuditNative
{
    private static readonly delegate* unmanaged<nint, int> StepFunction;
    private static readonly delegate* unmanaged[SuppressGCTransition]<nint, int, long> ColumnInt64Function;
    private static readonly delegate* unmanaged[SuppressGCTransition]<nint, int, byte*> ColumnBlobFunction;
    private static readonly delegate* unmanaged[SuppressGCTransition]<nint, int, int> ColumnBytesFunction;

#pragma warning disable CA1810 // Explicit static constructor: the pointers are resolved together and checked once.
    static SqliteAuditNative()
#pragma warning restore CA1810
    {
        if (!NativeLibrary.TryLoad("e_sqlite3", typeof(SQLite3Provider_e_sqlite3).Assembly, null, out var library)
            || !NativeLibrary.TryGetExport(library, "sqlite3_step", out var step)
            || !NativeLibrary.TryGetExport(library, "sqlite3_column_int64", out var int64)
            || !NativeLibrary.TryGetExport(library, "sqlite3_column_blob", out var blob)
            || !NativeLibrary.TryGetExport(library, "sqlite3_column_bytes", out var bytes)
            || !NativeLibrary.TryGetExport(library, "sqlite3_sourceid", out var sourceId))
        {
            return;
        }

        // Objects of one SQLite library must never be handed to another copy of it: the pointer to the version string
        // is an address inside the library, so equal pointers mean the very library SQLitePCL calls.
        var ours = ((delegate* unmanaged<byte*>)sourceId)();
        try
        {
            fixed (byte* theirs = raw.sqlite3_sourceid())
            {
                if (ours != theirs)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TypeInitializationException)
        {
            // SQLitePCL has no provider yet: nothing to compare with, so not used.
            return;
        }

        StepFunction = (delegate* unmanaged<nint, int>)step;
        ColumnInt64Function = (delegate* unmanaged[SuppressGCTransition]<nint, int, long>)int64;
        ColumnBlobFunction = (delegate* unmanaged[SuppressGCTransition]<nint, int, byte*>)blob;
        ColumnBytesFunction = (delegate* unmanaged[SuppressGCTransition]<nint, int, int>)bytes;
        IsAvailable = true;
    }

    /// <summary>False where the library could not be resolved (then SQLitePCL's own accessors are used).</summary>
    public static bool IsAvailable { get; }

    public static int Step(nint statement) => StepFunction(statement);

    public static long ColumnInt64(nint statement, int column) => ColumnInt64Function(statement, column);

    public static ReadOnlySpan<byte> ColumnBlob(nint statement, int column)
    {
        // Bytes after the pointer: sqlite3_column_bytes must follow sqlite3_column_blob (SQLite's documented order).
        var pointer = ColumnBlobFunction(statement, column);
        return pointer is null ? default : new ReadOnlySpan<byte>(pointer, ColumnBytesFunction(statement, column));
    }
}
