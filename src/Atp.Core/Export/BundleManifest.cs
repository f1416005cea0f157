using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atp.Core.Export;

/// <summary>
/// The signed description of an export bundle (format <see cref="Format"/>, see docs/export-bundle.md): what range of
/// which log it holds, the checkpoint that covers it, the hashes that tie it to earlier bundles, and every file's digest.
/// </summary>
public sealed record BundleManifest(
    string Format,
    string Origin,
    string Tenant,
    ulong From,
    ulong To,
    ulong TreeSize,
    string RootHash,
    bool Complete,
    JsonElement? Filters,
    IReadOnlyList<string> Edge,
    BundlePrevious? Previous,
    IReadOnlyList<BundleFile> Files,
    ulong Events,
    DateTimeOffset CreatedAt,
    string? ExportId)
{
    /// <summary>
    /// The verifier key (C2SP vkey) of the key that signed the manifest and the checkpoint, so a reader given no key can
    /// still check every signature against one key (trust on first use) and show which key that was.
    /// </summary>
    public string? VerifierKey { get; init; }

    /// <summary>The only format this version writes and reads.</summary>
    public const string CurrentFormat = "atp-bundle/1";

    /// <summary>At most this many entries go into one entries file.</summary>
    public const int MaxEntriesPerFile = 65_536;

    /// <summary>The longest entry line (leaf bytes) a reader accepts: far above any leaf ingestion can produce, and a bound on a reader's memory.</summary>
    public const int MaxLineBytes = 1 << 20;

    public const string ManifestName = "manifest.json";
    public const string SignatureName = "manifest.sig";
    public const string CheckpointName = "checkpoint";

    /// <summary>The name of entries file <paramref name="number"/> (0-based).</summary>
    public static string EntriesFileName(int number) => $"entries/{number:D6}.ndjson";

    /// <summary>The name of the inclusion-proof file that goes with entries file <paramref name="number"/> (filtered bundles).</summary>
    public static string ProofsFileName(int number) => $"proofs/{number:D6}.ndjson";

    /// <summary>The manifest as written into a bundle: camelCase JSON ending with one newline (it is also a signed note's text).</summary>
    public byte[] ToUtf8Bytes()
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(this, BundleJsonContext.Default.BundleManifest);
        var bytes = new byte[json.Length + 1];
        json.CopyTo(bytes, 0);
        bytes[^1] = (byte)'\n';
        return bytes;
    }

    /// <summary>Reads a manifest; null (and why) when the bytes are not one.</summary>
    public static BundleManifest? TryParse(ReadOnlySpan<byte> utf8, out string error)
    {
        try
        {
            var manifest = JsonSerializer.Deserialize(utf8, BundleJsonContext.Default.BundleManifest);
            if (manifest is null)
            {
                error = "the manifest is JSON null";
                return null;
            }

            error = string.Empty;
            return manifest;
        }
        catch (JsonException e)
        {
            error = $"the manifest is not valid: {e.Message}";
            return null;
        }
    }
}

/// <summary>The checkpoint of the bundle before this one and the consistency proof from it to this bundle's checkpoint.</summary>
public sealed record BundlePrevious(ulong TreeSize, string RootHash, IReadOnlyList<string> ConsistencyProof);

/// <summary>One member of a bundle: its name, the entries it holds, its size and SHA-256 (lowercase hex).</summary>
public sealed record BundleFile(string Name, ulong FirstIndex, ulong Count, long Size, string Sha256);

/// <summary>One line of a filtered bundle's proofs file: the entry's index and its inclusion proof (base64 hashes).</summary>
public sealed record BundleProofLine(ulong Index, IReadOnlyList<string> Hashes);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never, RespectNullableAnnotations = true, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(BundleManifest))]
[JsonSerializable(typeof(BundleProofLine))]
internal sealed partial class BundleJsonContext : JsonSerializerContext;
