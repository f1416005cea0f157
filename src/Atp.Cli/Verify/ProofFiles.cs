using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atp.Cli.Verify;

/// <summary><c>{"index":I,"treeSize":N,"hashes":[…]}</c>, as served by <c>GET …/log/proof/inclusion</c>; other members are ignored.</summary>
internal sealed record InclusionProofFile(
    [property: JsonPropertyName("index")] ulong? Index,
    [property: JsonPropertyName("treeSize")] ulong? TreeSize,
    [property: JsonPropertyName("leafHash")] string? LeafHash,
    [property: JsonPropertyName("hashes")] string[]? Hashes);

/// <summary><c>{"from":M,"to":N,"hashes":[…]}</c>, as served by <c>GET …/log/proof/consistency</c>.</summary>
internal sealed record ConsistencyProofFile(
    [property: JsonPropertyName("from")] ulong? From,
    [property: JsonPropertyName("to")] ulong? To,
    [property: JsonPropertyName("hashes")] string[]? Hashes);

[JsonSerializable(typeof(InclusionProofFile))]
[JsonSerializable(typeof(ConsistencyProofFile))]
internal sealed partial class ProofJsonContext : JsonSerializerContext;

internal static class ProofFiles
{
    public static T Parse<T>(byte[] json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, FileInfo file)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new CliInputException($"proof file '{file.FullName}' holds JSON null, not a proof");
        }
        catch (JsonException e)
        {
            throw new CliInputException($"proof file '{file.FullName}' is not valid proof JSON: {e.Message}");
        }
    }

    /// <inheritdoc cref="DecodeHashes(string[], string)"/>
    public static List<byte[]> DecodeHashes(string[]? hashes, FileInfo file) => DecodeHashes(hashes, $"proof file '{file.FullName}'");

    /// <summary>
    /// Decodes base64 hashes; lengths are left to the verifier, which reports them as a failed check.
    /// <paramref name="where"/> names the proof in error messages.
    /// </summary>
    public static List<byte[]> DecodeHashes(string[]? hashes, string where)
    {
        if (hashes is null)
        {
            throw new CliInputException($"{where} has no \"hashes\" array");
        }

        var decoded = new List<byte[]>(hashes.Length);
        for (var i = 0; i < hashes.Length; i++)
        {
            try
            {
                decoded.Add(Convert.FromBase64String(hashes[i] ?? throw new FormatException("null")));
            }
            catch (FormatException)
            {
                throw new CliInputException($"{where}: hashes[{i}] is not base64");
            }
        }

        return decoded;
    }
}
