using System.CommandLine;
using System.Formats.Tar;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Atp.Core.Export;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using Spectre.Console;

namespace Atp.Cli.Admin;

/// <summary>
/// <c>atp admin backup --data DIR --out FILE</c>: a consistent backup of an embedded (SQLite) cell, safe while its
/// server runs. The databases are copied with SQLite's online backup API (a snapshot, never a torn file) and the key
/// files are read before and after: when they changed meanwhile (a key written mid-backup) the whole copy is taken
/// again, and every tenant's latest checkpoint in the copy must verify under the keys in the copy, so a backup never
/// holds a checkpoint signed by a key it lacks. The archive is written owner-only, under a temporary name, fsynced and
/// renamed into place.
/// </summary>
internal static class BackupCommand
{
    private const int MaxAttempts = 5;

    public static Command Create(CliEnvironment environment)
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "Data directory of the embedded (SQLite) cell; the server may be running", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The archive to write (a tar; must not exist yet)", Required = true };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress display or progress lines" };
        var command = new Command("backup", "Back up an embedded cell (databases and keys) into one archive, while its server runs.") { data, output, noProgress };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(data)!, parse.GetValue(output)!, parse.GetValue(noProgress), environment,
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(
        DirectoryInfo data, FileInfo output, bool noProgress, CliEnvironment environment, TextWriter stdout, TextWriter error, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(data.FullName, BackupManifest.LogDatabase)))
        {
            throw new CliInputException($"'{data.FullName}' holds no {BackupManifest.LogDatabase}: not the data directory of an embedded cell (for PostgreSQL see docs/operations.md, Backup and restore)");
        }

        if (output.Exists)
        {
            throw new CliInputException($"'{output.FullName}' exists; a backup never overwrites one — choose another name");
        }

        var outputDirectory = output.Directory ?? throw new CliInputException($"'{output.FullName}' has no directory");
        if (!outputDirectory.Exists)
        {
            throw new CliInputException($"the directory '{outputDirectory.FullName}' does not exist");
        }

        // The copies are staged next to the archive (not in /tmp, which may be small or another file system), owner-only.
        var staging = Path.Combine(outputDirectory.FullName, $".{output.Name}.staging-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        CreatePrivateDirectory(staging);
        try
        {
            var steps = new List<string>();
            BackupManifest manifest;
            if (!noProgress && IsTerminal(stdout))
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                BackupManifest? made = null;
                await console.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async context =>
                    {
                        var task = context.AddTask("backing up", maxValue: 5);
                        made = await BackUpAsync(data.FullName, staging, output.FullName, environment, step =>
                        {
                            task.Description = Markup.Escape(step);
                            task.Increment(1);
                        }, cancellationToken).ConfigureAwait(false);
                        task.Value = task.MaxValue;
                    }).ConfigureAwait(false);
                manifest = made!;
            }
            else
            {
                manifest = await BackUpAsync(data.FullName, staging, output.FullName, environment, step =>
                {
                    if (!noProgress)
                    {
                        error.WriteLine($"progress: {step}");
                    }
                }, cancellationToken).ConfigureAwait(false);
            }

            var bytes = manifest.Members.Sum(m => m.Size);
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"backed up {manifest.Members.Count} files ({bytes / 1e6:F1} MB) and {manifest.TreeHeads.Count} tenant logs to {output.FullName}")).ConfigureAwait(false);
            foreach (var head in manifest.TreeHeads)
            {
                await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {head.Tenant}: size {head.Size}, root {head.Root}, checkpoint {head.CheckpointSize}")).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    private static async Task<BackupManifest> BackUpAsync(
        string data, string staging, string output, CliEnvironment environment, Action<string> progress, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            // Keys first, databases second, keys again: equal key sets around the snapshot mean every key that signed a
            // checkpoint in the snapshot is in the copy (keys are only ever added before they sign).
            var keysBefore = ReadKeyFiles(data);

            // The read models before the log: restored read models may be behind the log (the store re-queues what
            // they lack at start, as after a crash) but never ahead of it, which would name entries the log lacks.
            var readModels = Path.Combine(data, BackupManifest.ReadModelDatabase);
            var hasReadModels = File.Exists(readModels);
            if (hasReadModels)
            {
                progress($"copying {BackupManifest.ReadModelDatabase}");
                CopyDatabase(readModels, Path.Combine(staging, BackupManifest.ReadModelDatabase));
            }

            progress($"copying {BackupManifest.LogDatabase}");
            CopyDatabase(Path.Combine(data, BackupManifest.LogDatabase), Path.Combine(staging, BackupManifest.LogDatabase));

            var keysAfter = ReadKeyFiles(data);
            if (!SameKeys(keysBefore, keysAfter))
            {
                if (attempt == MaxAttempts)
                {
                    throw new CliInputException($"the key files of '{data}' kept changing during {MaxAttempts} attempts; try again when no key is being written");
                }

                continue;
            }

            progress("checking the copy against its keys");
            foreach (var (name, content) in keysAfter)
            {
                WritePrivateFile(Path.Combine(staging, name), content);
            }

            var heads = CheckCopy(staging, keysAfter);
            var members = new List<BackupMember>();
            var names = new List<string> { BackupManifest.LogDatabase };
            if (hasReadModels)
            {
                names.Add(BackupManifest.ReadModelDatabase);
            }

            names.AddRange(keysAfter.Keys.Order(StringComparer.Ordinal));
            progress("hashing");
            foreach (var name in names)
            {
                var path = Path.Combine(staging, name);
                await using var stream = File.OpenRead(path);
                var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
                members.Add(new BackupMember(name, stream.Length, Convert.ToHexStringLower(hash)));
            }

            var manifest = new BackupManifest(BackupManifest.CurrentFormat, environment.Clock.GetUtcNow(), members, heads);
            progress("writing the archive");
            await WriteArchiveAsync(staging, output, manifest, cancellationToken).ConfigureAwait(false);
            return manifest;
        }
    }

    // The online backup API copies a consistent snapshot while writers go on; the copy is switched out of WAL mode so
    // the archive member is one self-contained file.
    private static void CopyDatabase(string source, string destination)
    {
        File.Delete(destination);
        using var from = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = source, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ToString());
        using var to = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = destination, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        from.Open();
        using (var busy = from.CreateCommand())
        {
            busy.CommandText = "PRAGMA busy_timeout=30000";
            busy.ExecuteNonQuery();
        }

        to.Open();
        from.BackupDatabase(to);
        using var journal = to.CreateCommand();
        journal.CommandText = "PRAGMA journal_mode=DELETE";
        journal.ExecuteNonQuery();
    }

    // Relative name (forward slashes) → content of every key file the backup carries.
    private static SortedDictionary<string, byte[]> ReadKeyFiles(string data)
    {
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var directory in BackupManifest.KeyDirectories)
        {
            var root = Path.Combine(data, directory);
            if (!Directory.Exists(root))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            {
                var name = Path.GetRelativePath(data, file).Replace(Path.DirectorySeparatorChar, '/');

                // Temporary files of an atomic replace are not keys (yet); the renamed file is read on the next attempt.
                if (!name.EndsWith(".tmp", StringComparison.Ordinal) && BackupManifest.IsSafeMemberName(name))
                {
                    files[name] = File.ReadAllBytes(file);
                }
            }
        }

        foreach (var name in BackupManifest.KeyFiles)
        {
            var path = Path.Combine(data, name);
            if (File.Exists(path))
            {
                files[name] = File.ReadAllBytes(path);
            }
        }

        return files;
    }

    private static bool SameKeys(SortedDictionary<string, byte[]> before, SortedDictionary<string, byte[]> after) =>
        before.Count == after.Count && before.All(b => after.TryGetValue(b.Key, out var a) && a.AsSpan().SequenceEqual(b.Value));

    // Every tenant's head in the copy, and its latest checkpoint verified under the copied keys: the cell's own signing
    // keys for its tenants, the recorded source-cell keys for a replica.
    private static List<BackupTreeHead> CheckCopy(string staging, SortedDictionary<string, byte[]> keys)
    {
        var cellKeys = new List<NoteVerifier>();
        foreach (var (name, content) in keys)
        {
            // keys/ also holds the secret-sealing and cursor keys; the C2SP signer keys are the signing keys.
            var text = Encoding.UTF8.GetString(content).Trim();
            if (name.StartsWith("keys/", StringComparison.Ordinal) && text.StartsWith("PRIVATE+KEY+", StringComparison.Ordinal))
            {
                using var signer = NoteSigner.Parse(text);
                cellKeys.Add(signer.Verifier);
            }
        }

        var heads = new List<BackupTreeHead>();
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(staging, BackupManifest.LogDatabase), Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT h.tenant_id, h.size, h.root, t.status,
                   (SELECT c.size FROM checkpoints c WHERE c.tenant_id = h.tenant_id ORDER BY c.size DESC LIMIT 1),
                   (SELECT c.note FROM checkpoints c WHERE c.tenant_id = h.tenant_id ORDER BY c.size DESC LIMIT 1)
            FROM tree_heads h JOIN tenants t ON t.id = h.tenant_id
            ORDER BY h.tenant_id
            """;
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var tenant = reader.GetString(0);
            var size = (ulong)reader.GetInt64(1);
            var root = new Hash((byte[])reader[2]);
            var checkpointSize = reader.IsDBNull(4) ? 0UL : (ulong)reader.GetInt64(4);
            if (!reader.IsDBNull(5))
            {
                var verifiers = reader.GetString(3) == Core.Tenants.Tenant.Replica ? ReplicaVerifiers(keys, tenant) : cellKeys;
                var opened = Checkpoint.Open(Encoding.UTF8.GetBytes(reader.GetString(5)), verifiers, out var signed);
                if (!opened.IsValid || signed!.Size != checkpointSize || signed.Size > size)
                {
                    throw new CliInputException($"the copy is not consistent: tenant {tenant}'s latest checkpoint (size {checkpointSize}) does not verify under the keys copied with it ({opened.Failure ?? "size mismatch"}); nothing was written");
                }
            }

            heads.Add(new BackupTreeHead(tenant, size, root.ToBase64(), checkpointSize));
        }

        return heads;
    }

    private static List<NoteVerifier> ReplicaVerifiers(SortedDictionary<string, byte[]> keys, string tenant)
    {
        var verifiers = new List<NoteVerifier>();
        if (keys.TryGetValue($"replicas/{tenant}.keys", out var content))
        {
            foreach (var line in Encoding.UTF8.GetString(content).Split('\n'))
            {
                if (NoteVerifier.TryParse(line.Trim(), out var key, out _))
                {
                    verifiers.Add(key);
                }
            }
        }

        return verifiers;
    }

    private static async Task WriteArchiveAsync(string staging, string output, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var temporary = output + ".partial";
        File.Delete(temporary);
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.Asynchronous };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using (var file = new FileStream(temporary, options))
            {
                await using (var tar = new TarWriter(file, TarEntryFormat.Pax, leaveOpen: true))
                {
                    using var manifestStream = new MemoryStream(manifest.ToJson());
                    await tar.WriteEntryAsync(Entry(BackupManifest.ManifestName, manifestStream, manifest.CreatedAt), cancellationToken).ConfigureAwait(false);
                    foreach (var member in manifest.Members)
                    {
                        await using var stream = File.OpenRead(Path.Combine(staging, member.Name));
                        await tar.WriteEntryAsync(Entry(member.Name, stream, manifest.CreatedAt), cancellationToken).ConfigureAwait(false);
                    }
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, output);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static PaxTarEntry Entry(string name, Stream data, DateTimeOffset at) => new(TarEntryType.RegularFile, name)
    {
        DataStream = data,
        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        ModificationTime = at,
    };

    internal static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Writes a file that is owner-only from the moment it exists, and fsyncs it.</summary>
    internal static void WritePrivateFile(string path, ReadOnlySpan<byte> content)
    {
        CreatePrivateDirectory(Path.GetDirectoryName(path)!);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        stream.Write(content);
        stream.Flush(flushToDisk: true);
    }

    private static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && !Console.IsErrorRedirected;
}
