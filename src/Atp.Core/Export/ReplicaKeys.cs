using System.Text;
using Atp.Integrity;

namespace Atp.Core.Export;

/// <summary>
/// The source cell's verifier keys of each replica tenant, kept in the offline cell's data directory as
/// <c>replicas/{tenant}.keys</c> (one C2SP verifier key per line): public keys, so a plain file is enough, and the
/// same file serves both storage engines.
/// </summary>
public static class ReplicaKeys
{
    /// <summary>The file that lists tenant <paramref name="tenantId"/>'s source keys.</summary>
    public static string PathOf(string dataDirectory, string tenantId) =>
        Path.Combine(Path.GetFullPath(dataDirectory), "replicas", $"{tenantId}.keys");

    /// <summary>The recorded keys, oldest first; empty when none are recorded.</summary>
    public static IReadOnlyList<NoteVerifier> Read(string dataDirectory, string tenantId)
    {
        var path = PathOf(dataDirectory, tenantId);
        if (!File.Exists(path))
        {
            return [];
        }

        var keys = new List<NoteVerifier>();
        foreach (var line in File.ReadAllLines(path, Encoding.UTF8))
        {
            if (NoteVerifier.TryParse(line.Trim(), out var key, out _))
            {
                keys.Add(key);
            }
        }

        return keys;
    }

    /// <summary>Adds the keys not yet recorded (written to a temporary file and renamed, so the list is never torn).</summary>
    public static void Add(string dataDirectory, string tenantId, IEnumerable<string> verifierKeys)
    {
        ArgumentNullException.ThrowIfNull(verifierKeys);
        var path = PathOf(dataDirectory, tenantId);
        var known = Read(dataDirectory, tenantId).Select(k => k.VerifierKey).ToList();
        var added = verifierKeys.Where(k => !known.Contains(k, StringComparer.Ordinal)).Distinct(StringComparer.Ordinal).ToList();
        if (added.Count == 0)
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllLines(temporary, [.. known, .. added], new UTF8Encoding(false));
        File.Move(temporary, path, overwrite: true);
    }
}
