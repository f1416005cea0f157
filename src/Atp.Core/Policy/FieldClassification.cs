using System.Text.Json;
using Json.Pointer;

namespace Atp.Core.Policy;

/// <summary>
/// A tenant's classification of the fields of its events' <c>data</c>: the JSON pointers (RFC 6901, each under
/// <c>/data/</c>) whose values are personal data (<c>pii</c>) and are sealed at ingest like the envelope's own personal
/// fields. Equal when the same pointers are listed in the same order and name the same subject.
/// </summary>
public sealed record FieldClassification(IReadOnlyList<string> Pii)
{
    /// <summary>The most pointers one policy may classify.</summary>
    public const int MaxPointers = 100;

    /// <summary>The longest target type a classification may name as its subject.</summary>
    public const int MaxTargetTypeLength = 64;

    /// <summary>
    /// Whose personal data the classified fields are: null, the event's actor; else the first target of this type
    /// (its id is the data subject whose key seals them, so erasing that subject shreds them). An event without such a
    /// target seals them under its actor's key.
    /// </summary>
    public string? SubjectTargetType { get; init; }

    /// <summary>The longest pointer accepted.</summary>
    public const int MaxPointerLength = 256;

    public bool Equals(FieldClassification? other) =>
        other is not null && Pii.SequenceEqual(other.Pii, StringComparer.Ordinal) && string.Equals(SubjectTargetType, other.SubjectTargetType, StringComparison.Ordinal);

    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.Add(SubjectTargetType, StringComparer.Ordinal);
        foreach (var pointer in Pii)
        {
            hash.Add(pointer, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }

    /// <summary>Reads <c>{"pii":[pointer, …]}</c>, adding a line to <paramref name="errors"/> for each thing wrong with it.</summary>
    public static FieldClassification? Read(JsonElement value, string name, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{name}: an object {{\"pii\":[\"/data/…\", …]}} or null");
            return null;
        }

        var pointers = new List<string>();
        string? subjectTargetType = null;
        foreach (var member in value.EnumerateObject())
        {
            if (member.Name == "subjectTargetType")
            {
                subjectTargetType = member.Value.ValueKind == JsonValueKind.String ? member.Value.GetString() : null;
                if (member.Value.ValueKind != JsonValueKind.Null
                    && (subjectTargetType is null || subjectTargetType.Length == 0 || subjectTargetType.Length > MaxTargetTypeLength || subjectTargetType.Any(char.IsControl)))
                {
                    errors.Add($"{name}.subjectTargetType: a target type of 1 to {MaxTargetTypeLength} characters (the first target of that type is the data subject), or null for the actor");
                }

                continue;
            }

            if (member.Name != "pii")
            {
                errors.Add($"{name}.{member.Name}: unknown; a classification holds pii and subjectTargetType (secret and sensitive are planned)");
                continue;
            }

            if (member.Value.ValueKind != JsonValueKind.Array)
            {
                errors.Add($"{name}.pii: an array of JSON pointers under /data/");
                continue;
            }

            foreach (var item in member.Value.EnumerateArray())
            {
                var pointer = item.ValueKind == JsonValueKind.String ? item.GetString()! : null;
                if (Problem(pointer) is { } problem)
                {
                    errors.Add($"{name}.pii[{pointers.Count}]: {problem}");
                }

                pointers.Add(pointer ?? "");
            }
        }

        if (pointers.Count > MaxPointers)
        {
            errors.Add($"{name}.pii: at most {MaxPointers} pointers");
        }

        if (pointers.Distinct(StringComparer.Ordinal).Count() != pointers.Count)
        {
            errors.Add($"{name}.pii: a pointer is listed twice");
        }

        return new FieldClassification(pointers) { SubjectTargetType = subjectTargetType };
    }

    private static string? Problem(string? pointer)
    {
        if (pointer is null)
        {
            return "a JSON pointer string";
        }

        if (pointer.Length > MaxPointerLength)
        {
            return $"at most {MaxPointerLength} characters";
        }

        if (!pointer.StartsWith("/data/", StringComparison.Ordinal) || pointer.Length == "/data/".Length)
        {
            return "a pointer into the event's data (/data/…); the envelope's personal fields are classified already";
        }

        // RFC 6901's escapes are the only ones: "~" must be "~0" or "~1", so each pointer has one spelling.
        for (var i = 0; i < pointer.Length; i++)
        {
            if (pointer[i] == '~' && (i + 1 == pointer.Length || pointer[i + 1] is not ('0' or '1')))
            {
                return "not a JSON pointer (RFC 6901: \"~\" is written \"~0\", \"/\" inside a name \"~1\")";
            }
        }

        return JsonPointer.TryParse(pointer, out _) ? null : "not a JSON pointer (RFC 6901)";
    }

    /// <summary>Writes <c>{"pii":[…]}</c>, with <c>subjectTargetType</c> when one is named.</summary>
    public void Write(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteStartArray("pii");
        foreach (var pointer in Pii)
        {
            writer.WriteStringValue(pointer);
        }

        writer.WriteEndArray();
        if (SubjectTargetType is { } targetType)
        {
            writer.WriteString("subjectTargetType", targetType);
        }

        writer.WriteEndObject();
    }
}
