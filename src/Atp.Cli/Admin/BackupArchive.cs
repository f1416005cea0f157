using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atp.Cli.Admin;

/// <summary>
/// The backup archive of an embedded cell (<c>atp admin backup</c>): a PAX tar whose first member is
/// <see cref="ManifestName"/> — every other member's name, size and SHA-256, and each tenant's tree head and latest
/// checkpoint size captured — followed by the members: <c>atp.db</c>, <c>atp-read.db</c> and the key files.
/// </summary>
internal sealed record BackupManifest(
    string Format,
    DateTimeOffset CreatedAt,
    IReadOnlyList<BackupMember> Members,
    IReadOnlyList<BackupTreeHead> TreeHeads)
{
    public const string CurrentFormat = "atp-backup/1";

    public const string ManifestName = "atp-backup.json";

    /// <summary>The manifest is read before anything is extracted; a larger one is not a manifest of ours.</summary>
    public const int MaxManifestBytes = 64 << 20;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, BackupJsonContext.Default.BackupManifest);

    public static BackupManifest? Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, BackupJsonContext.Default.BackupManifest);

    /// <summary>
    /// The files of a data directory that belong in a backup besides the databases: the key material. Exports, the space
    /// reserve and the published-head record (<c>atp-published-heads</c>) stay out; see docs/operations.md.
    /// </summary>
    public static readonly string[] KeyDirectories = ["keys", "replicas", "dataprotection"];

    /// <summary>Single key files at the top of the data directory.</summary>
    public static readonly string[] KeyFiles = ["bootstrap-admin.key"];

    /// <summary>The databases, copied with SQLite's online backup API; the read models are optional (rebuilt from the log).</summary>
    public const string LogDatabase = "atp.db";

    public const string ReadModelDatabase = "atp-read.db";

    /// <summary>
    /// Whether <paramref name="name"/> may be a member: a relative path of plain segments with forward slashes, inside one
    /// of the directories a backup writes, so extracting it can never reach outside the target directory.
    /// </summary>
    public static bool IsSafeMemberName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 512 || name.Contains('\\', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var segments = name.Split('/');
        if (segments.Any(s => s.Length == 0 || s == "." || s == ".."))
        {
            return false;
        }

        return segments.Length == 1
            ? name is LogDatabase or ReadModelDatabase || KeyFiles.Contains(name, StringComparer.Ordinal)
            : KeyDirectories.Contains(segments[0], StringComparer.Ordinal);
    }
}

/// <summary>One member of the archive.</summary>
internal sealed record BackupMember(string Name, long Size, string Sha256);

/// <summary>A tenant's committed tree head in the backed-up log, with the size of its latest checkpoint (0: none yet).</summary>
internal sealed record BackupTreeHead(string Tenant, ulong Size, string Root, ulong CheckpointSize);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(BackupManifest))]
internal sealed partial class BackupJsonContext : JsonSerializerContext;
