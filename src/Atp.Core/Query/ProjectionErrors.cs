using System.Text.Json;

namespace Atp.Core.Query;

/// <summary>
/// Why an entry could not be projected, in words for the dead-letter table, the API and the logs: never a piece of the
/// entry itself (a tenant's payload may hold personal data), only what kind of failure and where.
/// </summary>
public static class ProjectionErrors
{
    /// <summary>True for the failures that belong to one entry (its bytes or values), not to the store or the machine.</summary>
    public static bool IsEntryFailure(Exception exception) =>
        exception is JsonException or FormatException or InvalidOperationException or ArgumentException or OverflowException;

    /// <summary>A description of an entry's failure that quotes none of its content.</summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            // The reader's own messages quote the offending character; the position is enough to find it in the leaf.
            JsonException { BytePositionInLine: { } position } json => $"The stored leaf is not valid JSON (line {json.LineNumber ?? 0}, byte {position}).",
            JsonException => "The stored leaf lacks a field the read models index, or holds one of the wrong kind.",
            FormatException => "A field of the stored leaf has a value of the wrong format (occurredAt must be an RFC 3339 time).",
            OverflowException => "A field of the stored leaf is out of range.",
            _ => "A field of the stored leaf has a value the read models cannot hold.",
        };
    }

    /// <summary>
    /// A leaf's fields that no engine can store as text: U+0000 (PostgreSQL's text type refuses it). Returns the
    /// failure to record, or null when the fields are fine.
    /// </summary>
    public static string? RefuseUnstorable(LeafFields fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        if (HasNul(fields.ActorType) || HasNul(fields.ActorId) || HasNul(fields.Action) || HasNul(fields.Outcome) || HasNul(fields.Text)
            || fields.Targets.Any(t => HasNul(t.Type) || HasNul(t.Id)))
        {
            return "A field of the stored leaf holds U+0000, which the read models cannot store.";
        }

        return null;
    }

    private static bool HasNul(string value) => value.Contains('\0', StringComparison.Ordinal);
}
