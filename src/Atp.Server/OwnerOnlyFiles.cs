using System.Runtime.InteropServices;

namespace Atp.Server;

/// <summary>
/// Everything the server creates (the data directory, SQLite databases and their WAL and shared-memory files, keys,
/// exports) is owner-only: the process file-creation mask is set to 077 before anything is opened, so even files a
/// library creates later (SQLite's -wal and -shm) are never readable by other local users.
/// </summary>
internal static partial class OwnerOnlyFiles
{
    private const uint OwnerOnlyMask = 0x3F; // 077: no group or other permission bits on anything created

    /// <summary>Sets the mask and tightens an existing data directory; false where the platform has no umask.</summary>
    public static bool Apply(string dataDirectory)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        try
        {
            _ = SetMask(OwnerOnlyMask);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }

        // A directory created before this release (0755) is narrowed too; files in it keep their modes until rewritten,
        // but an owner-only directory already keeps other users out of them.
        Directory.CreateDirectory(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return true;
    }

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint SetMask(uint mask);
}
