using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using Atp.Core.Events;

namespace Atp.Core.Policy;

/// <summary>
/// How long a tenant's entries keep their content (docs/retention in docs/operations.md): <see cref="Days"/> for every
/// event type, <see cref="Types"/> for the types named (a type's own days win over <see cref="Days"/>). A type with
/// neither is kept for ever. Days count from the server's receive time, never the client's occurredAt.
/// </summary>
/// <param name="Days">Days for every type not named in <paramref name="Types"/>; null keeps them for ever.</param>
/// <param name="Types">Days per event type, exactly as ingested.</param>
public sealed record RetentionPolicy(int? Days, IReadOnlyDictionary<string, int> Types)
{
    /// <summary>The shortest retention a policy may set.</summary>
    public const int MinDays = 1;

    /// <summary>The longest retention a policy may set (100 years).</summary>
    public const int MaxDays = 36_500;

    /// <summary>The most event types one policy may name.</summary>
    public const int MaxTypes = 200;

    /// <summary>The days an entry of <paramref name="type"/> keeps its content; null: for ever.</summary>
    public int? DaysFor(string type) => Types.TryGetValue(type, out var days) ? days : Days;

    /// <summary>The shortest retention of any type (null when nothing expires): no entry received after now minus it can expire.</summary>
    public int? ShortestDays => Types.Count == 0 ? Days : Math.Min(Days ?? int.MaxValue, Types.Values.Min());

    public bool Equals(RetentionPolicy? other) =>
        other is not null && Days == other.Days && Types.Count == other.Types.Count
        && Types.All(pair => other.Types.TryGetValue(pair.Key, out var days) && days == pair.Value);

    public override int GetHashCode() => HashCode.Combine(Days, Types.Count);

    /// <summary>Writes the stored form, types in ordinal order so equal policies store equal bytes.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        if (Days is { } days)
        {
            writer.WriteNumber("days", days);
        }
        else
        {
            writer.WriteNull("days");
        }

        writer.WriteStartObject("types");
        foreach (var (type, typeDays) in Types.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            writer.WriteNumber(type, typeDays);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>
    /// Reads a retention object (stored or proposed); adds what is wrong to <paramref name="errors"/> (prefixed by
    /// <paramref name="path"/>) and returns null when it is not valid.
    /// </summary>
    public static RetentionPolicy? Read(JsonElement element, string path, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{path}: an object {{\"days\": N or null, \"types\": {{\"<event type>\": N, …}}}}, or null for none");
            return null;
        }

        var before = errors.Count;
        int? days = null;
        var types = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var member in element.EnumerateObject())
        {
            switch (member.Name)
            {
                case "days":
                    days = member.Value.ValueKind == JsonValueKind.Null ? null : ReadDays(member.Value, $"{path}.days", errors);
                    break;
                case "types" when member.Value.ValueKind == JsonValueKind.Object:
                    foreach (var type in member.Value.EnumerateObject())
                    {
                        if (!EventReader.IsValidType(type.Name))
                        {
                            errors.Add($"{path}.types: '{Shorten(type.Name)}' is not a valid event type name");
                        }
                        else if (ReadDays(type.Value, $"{path}.types.{type.Name}", errors) is { } typeDays)
                        {
                            types[type.Name] = typeDays;
                        }
                    }

                    if (types.Count > MaxTypes)
                    {
                        errors.Add($"{path}.types: at most {MaxTypes} event types");
                    }

                    break;
                case "types" when member.Value.ValueKind == JsonValueKind.Null:
                    break;
                case "types":
                    errors.Add($"{path}.types: an object of event type to days");
                    break;
                default:
                    errors.Add($"{path}.{Shorten(member.Name)}: unknown; retention holds days and types");
                    break;
            }
        }

        return errors.Count == before ? new RetentionPolicy(days, types.ToFrozenDictionary(StringComparer.Ordinal)) : null;
    }

    private static int? ReadDays(JsonElement value, string path, List<string> errors)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var days) && days is >= MinDays and <= MaxDays)
        {
            return days;
        }

        errors.Add($"{path}: a whole number of days, {MinDays.ToString(CultureInfo.InvariantCulture)}-{MaxDays.ToString(CultureInfo.InvariantCulture)}");
        return null;
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
