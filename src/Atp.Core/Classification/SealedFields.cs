using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Pointer;

namespace Atp.Core.Classification;

/// <summary>
/// The inverse of what a <c>pii:read</c> reader is shown: an event with clear values at some JSON pointers, and the
/// <c>sealed</c> map of the tokens the leaf holds there, give back the leaf's content. A verifier with no key hashes
/// that, so it checks the tokens the log committed to, never the clear text shown beside them.
/// </summary>
public static class SealedFields
{
    /// <summary>
    /// Writes <paramref name="shown"/> with each token of <paramref name="sealedFields"/> put back at its pointer (as
    /// JSON, not yet canonical); returns why it cannot, or null. Every pointer must name a member the event has, and
    /// every value must be a token: a map that adds members or puts back clear text is refused, not hashed.
    /// </summary>
    public static string? TryPutBack(JsonElement shown, IEnumerable<KeyValuePair<string, string>> sealedFields, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(sealedFields);
        var root = JsonNode.Parse(shown.GetRawText());
        foreach (var (location, token) in sealedFields)
        {
            if (!FieldToken.IsToken(token))
            {
                return $"sealed[\"{location}\"] is not a sealed token ({FieldToken.Prefix}…)";
            }

            if (location.Length == 0 || !JsonPointer.TryParse(location, out var pointer))
            {
                return $"sealed names \"{location}\", which is not a JSON pointer to a member of the event";
            }

            if (!pointer.TryEvaluate(root!, out var node) || node is null)
            {
                return $"sealed names \"{location}\", which the event does not have";
            }

            node.ReplaceWith(JsonValue.Create(token));
        }

        using var writer = new Utf8JsonWriter(output);
        if (root is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            root.WriteTo(writer);
        }

        return null;
    }
}
