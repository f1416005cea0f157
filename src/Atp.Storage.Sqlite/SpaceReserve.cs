namespace Atp.Storage.Sqlite;

/// <summary>
/// A file of zeros (<c>atp-space-reserve</c>) that holds back disk space for the one moment that needs it: opening the
/// databases on a disk another process has filled. SQLite must create a WAL database's shared-memory index
/// (<c>-shm</c>) and WAL on open, and fails with "disk I/O error" when it cannot; deleting the reserve makes that room,
/// so the store starts and serves reads. Appends stay refused until the disk has room for a new reserve and
/// <see cref="SqliteStoreOptions.MinimumFreeBytes"/> besides, so the reserve is never spent on log entries.
/// </summary>
internal sealed class SpaceReserve(string dataDirectory, long bytes)
{
    public const string FileName = "atp-space-reserve";

    private readonly string _path = Path.Combine(dataDirectory, FileName);

    public bool Exists => bytes == 0 || File.Exists(_path);

    /// <summary>Bytes the data directory's file system lets this process write now.</summary>
    public long FreeBytes() => new DriveInfo(dataDirectory).AvailableFreeSpace;

    /// <summary>Bytes that must be free before appends resume: the missing reserve, and <paramref name="minimumFree"/> after it.</summary>
    public long NeededToResume(long minimumFree) => minimumFree + (Exists ? 0 : bytes);

    /// <summary>Deletes the reserve; true when there was one.</summary>
    public bool Release()
    {
        if (bytes == 0 || !File.Exists(_path))
        {
            return false;
        }

        File.Delete(_path);
        return true;
    }

    /// <summary>
    /// Writes the reserve when it is missing. Zeros are written, not merely allocated, so that the space is held on file
    /// systems without fallocate too; on a failure (the disk filled meanwhile) the partial file is removed.
    /// </summary>
    public void Create()
    {
        if (Exists)
        {
            return;
        }

        var partial = _path + ".partial";
        try
        {
            using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var zeros = new byte[1 << 20];
                for (var written = 0L; written < bytes; written += zeros.Length)
                {
                    stream.Write(zeros, 0, (int)Math.Min(zeros.Length, bytes - written));
                }

                stream.Flush(flushToDisk: true);
            }

            File.Move(partial, _path);
        }
        catch (IOException)
        {
            File.Delete(partial);
            throw;
        }
    }
}
