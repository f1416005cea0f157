using System.CommandLine;
using System.Formats.Tar;
using System.Globalization;
using System.Security.Cryptography;
using Atp.Core.Storage;

namespace Atp.Cli.Admin;

/// <summary>
/// <c>atp admin restore --from FILE --data DIR</c>: restores an <c>atp admin backup</c> archive into a data directory
/// (the server stopped). The whole archive is checked against its manifest before anything is written; then it is
/// extracted owner-only into a staging directory beside the target and moved into place. A target that holds anything
/// besides the published-head record is refused unless <c>--force</c>; that record (<c>atp-published-heads</c>) is always
/// kept, so the server detects a restore of an older backup (docs/operations.md, Backup and restore).
/// </summary>
internal static class RestoreCommand
{
    public static Command Create()
    {
        var from = new Option<FileInfo>("--from") { Description = "The archive written by atp admin backup", Required = true };
        var data = new Option<DirectoryInfo>("--data") { Description = "The data directory to restore into (the server must be stopped)", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace what the data directory holds (its published-head record is kept)" };
        var command = new Command("restore", "Restore an embedded cell from a backup archive, after checking every member against the archive's manifest.") { from, data, force };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(from)!, parse.GetValue(data)!, parse.GetValue(force), parse.InvocationConfiguration.Output, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo from, DirectoryInfo data, bool force, TextWriter output, CancellationToken cancellationToken)
    {
        if (!from.Exists)
        {
            throw new CliInputException($"'{from.FullName}' does not exist");
        }

        var target = data.FullName.TrimEnd(Path.DirectorySeparatorChar);
        var kept = PublishedHeads.FileName;
        var occupied = Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any(e => Path.GetFileName(e) != kept);
        if (occupied && !force)
        {
            throw new CliInputException($"'{target}' is not empty; stop its server and pass --force to replace what it holds (its {kept} record is kept)");
        }

        // Everything is verified before the first byte is written: a damaged archive leaves the target untouched.
        var manifest = await VerifyAsync(from.FullName, cancellationToken).ConfigureAwait(false);

        var parent = Path.GetDirectoryName(target) ?? throw new CliInputException($"'{target}' has no parent directory");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.restore-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        BackupCommand.CreatePrivateDirectory(staging);
        try
        {
            await ExtractAsync(from.FullName, manifest, staging, cancellationToken).ConfigureAwait(false);
            MoveIntoPlace(staging, target, kept);
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"restored {manifest.Members.Count} files and {manifest.TreeHeads.Count} tenant logs (backup of {manifest.CreatedAt:O}) into {target}")).ConfigureAwait(false);
        foreach (var head in manifest.TreeHeads)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {head.Tenant}: size {head.Size}, root {head.Root}, checkpoint {head.CheckpointSize}")).ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }

    /// <summary>Reads the whole archive once: a manifest first, then exactly its members, each with its size and SHA-256.</summary>
    internal static async Task<BackupManifest> VerifyAsync(string archive, CancellationToken cancellationToken)
    {
        try
        {
            await using var file = File.OpenRead(archive);
            await using var tar = new TarReader(file);
            var manifest = await ReadManifestAsync(tar, cancellationToken).ConfigureAwait(false);
            var expected = manifest.Members.ToDictionary(m => m.Name, StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !expected.TryGetValue(entry.Name, out var member) || !seen.Add(entry.Name))
                {
                    throw Damaged($"member '{entry.Name}' is not listed in the manifest (or listed once and found twice)");
                }

                var (size, sha256) = await DigestAsync(entry.DataStream, cancellationToken).ConfigureAwait(false);
                if (size != member.Size || sha256 != member.Sha256)
                {
                    throw Damaged($"member '{entry.Name}' does not match its SHA-256 in the manifest");
                }
            }

            if (expected.Keys.FirstOrDefault(name => !seen.Contains(name)) is { } missing)
            {
                throw Damaged($"member '{missing}' listed in the manifest is missing");
            }

            return manifest;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or System.Text.Json.JsonException)
        {
            throw Damaged($"it is not a readable tar archive: {e.Message}");
        }
    }

    private static async Task<BackupManifest> ReadManifestAsync(TarReader tar, CancellationToken cancellationToken)
    {
        var entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        if (entry is null || entry.Name != BackupManifest.ManifestName || entry.DataStream is null || entry.Length > BackupManifest.MaxManifestBytes)
        {
            throw Damaged($"it does not start with {BackupManifest.ManifestName}");
        }

        using var buffer = new MemoryStream();
        await entry.DataStream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        var manifest = BackupManifest.Parse(buffer.ToArray());
        if (manifest is null || manifest.Format != BackupManifest.CurrentFormat || manifest.Members is null || manifest.TreeHeads is null)
        {
            throw Damaged($"its manifest is not an {BackupManifest.CurrentFormat} manifest");
        }

        if (manifest.Members.FirstOrDefault(m => !BackupManifest.IsSafeMemberName(m.Name)) is { } unsafeMember)
        {
            throw Damaged($"its manifest lists '{unsafeMember.Name}', which is not a name a backup writes");
        }

        if (!manifest.Members.Any(m => m.Name == BackupManifest.LogDatabase))
        {
            throw Damaged($"it holds no {BackupManifest.LogDatabase}");
        }

        return manifest;
    }

    // Second read: each member is written owner-only and fsynced, and hashed again as it is written, so an archive
    // changed between the two reads is caught too.
    private static async Task ExtractAsync(string archive, BackupManifest manifest, string staging, CancellationToken cancellationToken)
    {
        var expected = manifest.Members.ToDictionary(m => m.Name, StringComparer.Ordinal);
        await using var file = File.OpenRead(archive);
        await using var tar = new TarReader(file);
        _ = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
        {
            var member = expected[entry.Name];
            var path = Path.Combine(staging, member.Name.Replace('/', Path.DirectorySeparatorChar));
            BackupCommand.CreatePrivateDirectory(Path.GetDirectoryName(path)!);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using (var stream = new FileStream(path, options))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var source = entry.DataStream ?? Stream.Null;
                var buffer = new byte[1 << 16];
                long size = 0;
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    size += read;
                }

                if (size != member.Size || Convert.ToHexStringLower(hash.GetHashAndReset()) != member.Sha256)
                {
                    throw Damaged($"member '{member.Name}' changed while it was restored");
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
        }
    }

    // The target keeps only its published-head record; stale SQLite -wal/-shm files of the old database must go, or
    // SQLite would replay them into the restored one.
    private static void MoveIntoPlace(string staging, string target, string kept)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(target).ToList())
        {
            if (Path.GetFileName(entry) == kept)
            {
                continue;
            }

            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(staging).ToList())
        {
            var destination = Path.Combine(target, Path.GetFileName(entry));
            if (Directory.Exists(entry))
            {
                Directory.Move(entry, destination);
            }
            else
            {
                File.Move(entry, destination);
            }
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static async Task<(long Size, string Sha256)> DigestAsync(Stream? data, CancellationToken cancellationToken)
    {
        if (data is null)
        {
            return (0, Convert.ToHexStringLower(SHA256.HashData([])));
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        long size = 0;
        int read;
        while ((read = await data.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            size += read;
        }

        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static CliInputException Damaged(string why) => new($"the archive is damaged or not an ATP backup: {why}; nothing was written");
}
