using System.Text.Json;
using System.Text.Json.Serialization;
using Atp.Integrity;

namespace Atp.Server.Integrity;

/// <summary>
/// <c>{DataDirectory}/keys/cell-signing.keyring.json</c>: every signing key's file, verifier key, status and validity, so a
/// rotation survives restarts. Public halves and file names only, no secret; still owner-only like the rest of keys/.
/// Replaced atomically (a temporary file, fsynced, renamed over the old one): a crash leaves the old or the new keyring,
/// never a torn one.
/// </summary>
internal static class SigningKeyring
{
    public const string FileName = "cell-signing.keyring.json";
    private const int Version = 1;

    /// <summary>One key: the file holding its secret (in keys/) and its public state.</summary>
    public sealed record Entry(string File, SigningKeyInfo Key);

    public static string PathOf(string keysDirectory) => Path.Combine(keysDirectory, FileName);

    public static string StatusName(SigningKeyStatus status) => status switch
    {
        SigningKeyStatus.Active => "active",
        SigningKeyStatus.Next => "next",
        SigningKeyStatus.Retiring => "retiring",
        SigningKeyStatus.Retired => "retired",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    /// <summary>The keyring, or null when the cell has never rotated (no keyring file).</summary>
    public static IReadOnlyList<Entry>? Read(string keysDirectory)
    {
        var path = PathOf(keysDirectory);
        if (!File.Exists(path))
        {
            return null;
        }

        KeyringFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllBytes(path), KeyringJson.Default.KeyringFile);
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"The keyring {path} is not valid JSON: {e.Message}", e);
        }

        if (file is not { Version: Version, Keys.Count: > 0 })
        {
            throw new InvalidOperationException($"The keyring {path} is not a version {Version} keyring with at least one key.");
        }

        var entries = new List<Entry>(file.Keys.Count);
        foreach (var key in file.Keys)
        {
            if (!NoteVerifier.TryParse(key.VerifierKey, out var verifier, out var error))
            {
                throw new InvalidOperationException($"The keyring {path} names an unusable verifier key: {error}");
            }

            if (key.File is null || Path.GetFileName(key.File) != key.File || !key.File.EndsWith(".key", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The keyring {path} names a key file outside keys/ or not ending in .key.");
            }

            var status = Enum.GetValues<SigningKeyStatus>().FirstOrDefault(s => StatusName(s) == key.Status, (SigningKeyStatus)(-1));
            if (status < 0)
            {
                throw new InvalidOperationException($"The keyring {path} gives key {verifier.KeyId:x8} the unknown status '{key.Status}'.");
            }

            entries.Add(new Entry(key.File, new SigningKeyInfo(verifier, status, key.NotBefore, key.NotAfter, key.RetiredAt)));
        }

        return entries;
    }

    public static void Write(string keysDirectory, IReadOnlyList<Entry> entries)
    {
        var path = PathOf(keysDirectory);
        var file = new KeyringFile(Version, [.. entries.Select(e => new KeyringKey(
            e.Key.KeyIdHex, e.File, e.Key.Verifier.VerifierKey, StatusName(e.Key.Status), e.Key.NotBefore, e.Key.NotAfter, e.Key.RetiredAt))]);
        var temporary = path + ".tmp";
        File.Delete(temporary);
        OwnerOnlyFile.Write(temporary, JsonSerializer.Serialize(file, KeyringJson.Default.KeyringFile) + "\n");
        File.Move(temporary, path, overwrite: true);
    }

    internal sealed record KeyringFile(int Version, IReadOnlyList<KeyringKey> Keys);

    internal sealed record KeyringKey(
        string KeyId, string? File, string? VerifierKey, string? Status, DateTimeOffset? NotBefore, DateTimeOffset? NotAfter, DateTimeOffset? RetiredAt);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SigningKeyring.KeyringFile))]
internal sealed partial class KeyringJson : JsonSerializerContext;
