using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atp.Integrity;

namespace Atp.Core.Events;

/// <summary>An event as sent, validated, before the server assigns what is missing.</summary>
public sealed record EventDraft(
    Guid? Id,
    string Type,
    DateTimeOffset OccurredAt,
    Party Actor,
    string Action,
    IReadOnlyList<Party> Targets,
    string Outcome,
    EventContext? Context,
    JsonElement? Data)
{
    /// <summary>The data object's RFC 8785 form, produced once while validating and copied into the leaf.</summary>
    public ReadOnlyMemory<byte> CanonicalData { get; init; }
}

/// <summary>
/// Reads and validates input events (the "Event shape" of the API). Every rule is checked and every failure is
/// reported, so a client fixes a batch in one round trip.
/// </summary>
public static partial class EventReader
{
    public const int MaxTargets = 10;
    public const int MaxDataBytes = 64 * 1024;
    public const int MaxTextLength = 256;
    public const int MaxUserAgentLength = 1024;

    private static readonly string[] KnownMembers = ["id", "type", "occurredAt", "actor", "action", "targets", "outcome", "context", "data"];
    private static readonly string[] PartyMembers = ["type", "id", "name"];
    private static readonly string[] ContextMembers = ["ip", "userAgent", "requestId"];

    /// <summary>Validates one event; returns null and adds to <paramref name="errors"/> when it is not acceptable.</summary>
    public static EventDraft? Read(JsonElement element, int index, List<EventError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new EventError(index, "", "an event must be a JSON object"));
            return null;
        }

        CheckMembers(element, index, "", KnownMembers, "id, type, occurredAt, actor, action, targets, outcome, context, data", errors);

        Guid? id = null;
        if (element.TryGetProperty("id", out var idElement) && idElement.ValueKind != JsonValueKind.Null)
        {
            if (idElement.ValueKind == JsonValueKind.String && Guid.TryParseExact(idElement.GetString(), "D", out var parsed) && parsed != Guid.Empty)
            {
                id = parsed;
            }
            else
            {
                errors.Add(new EventError(index, "/id", "must be a UUID string such as 0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"));
            }
        }

        var type = RequiredText(element, "type", index, errors, 128);
        if (type is not null && !TypePattern().IsMatch(type))
        {
            errors.Add(new EventError(index, "/type", "must start with a letter or digit and contain only letters, digits and . _ : / -"));
        }

        var occurredAt = default(DateTimeOffset);
        var occurredText = RequiredText(element, "occurredAt", index, errors, 64);
        if (occurredText is not null && !TryParseTimestamp(occurredText, out occurredAt))
        {
            errors.Add(new EventError(index, "/occurredAt", "must be an RFC 3339 date-time with offset, e.g. 2026-11-26T10:15:30Z"));
        }

        var actor = element.TryGetProperty("actor", out var actorElement)
            ? ReadParty(actorElement, index, "/actor", errors)
            : AddMissing<Party>(index, "/actor", errors);

        var action = RequiredText(element, "action", index, errors, 128);
        if (action is not null && !ActionPattern().IsMatch(action))
        {
            errors.Add(new EventError(index, "/action", "must be resource.verb, e.g. document.update"));
        }

        var targets = new List<Party>();
        if (element.TryGetProperty("targets", out var targetsElement) && targetsElement.ValueKind != JsonValueKind.Null)
        {
            if (targetsElement.ValueKind != JsonValueKind.Array)
            {
                errors.Add(new EventError(index, "/targets", "must be an array of {type, id, name?}"));
            }
            else if (targetsElement.GetArrayLength() > MaxTargets)
            {
                errors.Add(new EventError(index, "/targets", $"at most {MaxTargets} targets"));
            }
            else
            {
                var i = 0;
                foreach (var target in targetsElement.EnumerateArray())
                {
                    var party = ReadParty(target, index, $"/targets/{i++}", errors);
                    if (party is not null)
                    {
                        targets.Add(party);
                    }
                }
            }
        }

        var outcome = EventOutcome.Unknown;
        if (element.TryGetProperty("outcome", out var outcomeElement) && outcomeElement.ValueKind != JsonValueKind.Null)
        {
            if (outcomeElement.ValueKind == JsonValueKind.String && EventOutcome.IsValid(outcomeElement.GetString()!))
            {
                outcome = outcomeElement.GetString()!;
            }
            else
            {
                errors.Add(new EventError(index, "/outcome", "must be success, failure or unknown"));
            }
        }

        EventContext? context = null;
        if (element.TryGetProperty("context", out var contextElement) && contextElement.ValueKind != JsonValueKind.Null)
        {
            context = ReadContext(contextElement, index, errors);
        }

        JsonElement? data = null;
        ReadOnlyMemory<byte> canonicalData = default;
        if (element.TryGetProperty("data", out var dataElement) && dataElement.ValueKind != JsonValueKind.Null)
        {
            if (dataElement.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new EventError(index, "/data", "must be a JSON object"));
            }
            else if (TryCanonicalizeData(dataElement, out canonicalData) is { } dataError)
            {
                errors.Add(new EventError(index, "/data", dataError));
            }
            else
            {
                data = dataElement;
            }
        }

        if (errors.Count > before)
        {
            return null;
        }

        return new EventDraft(id, type!, occurredAt, actor!, action!, targets, outcome, context, data) { CanonicalData = canonicalData };
    }

    /// <summary>RFC 3339 date-time with a time-zone offset (a bare local time is ambiguous in an audit trail).</summary>
    public static bool TryParseTimestamp(string text, out DateTimeOffset value)
    {
        value = default;
        return Rfc3339Pattern().IsMatch(text)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out value);
    }

    /// <summary>
    /// The data object must have a canonical (RFC 8785) form — no duplicate names, lone surrogates or numbers beyond a
    /// double — and that form, which is what gets stored, must fit in <see cref="MaxDataBytes"/> bytes of UTF-8.
    /// </summary>
    private static string? TryCanonicalizeData(JsonElement data, out ReadOnlyMemory<byte> canonical)
    {
        canonical = default;
        var output = new LimitedBufferWriter(MaxDataBytes);
        try
        {
            JsonCanonicalizer.Write(data, output);
        }
        catch (JsonException e)
        {
            return $"has no canonical JSON form: {e.Message}";
        }
        catch (LimitedBufferWriter.LimitExceededException)
        {
            return $"must be at most {MaxDataBytes / 1024} KiB in canonical UTF-8 form";
        }

        canonical = output.WrittenMemory;
        return null;
    }

    private static void CheckMembers(JsonElement element, int index, string pointer, string[] allowed, string allowedList, List<EventError> errors)
    {
        // A bit per allowed member: duplicates are found without allocating (this runs per object of every event).
        var seen = 0;
        foreach (var member in element.EnumerateObject())
        {
            var position = -1;
            for (var i = 0; i < allowed.Length; i++)
            {
                if (member.NameEquals(allowed[i]))
                {
                    position = i;
                    break;
                }
            }

            if (position < 0)
            {
                errors.Add(new EventError(index, $"{pointer}/{EscapePointer(member.Name)}", $"unknown member; allowed: {allowedList}"));
            }
            else if ((seen & (1 << position)) != 0)
            {
                errors.Add(new EventError(index, $"{pointer}/{EscapePointer(member.Name)}", "appears more than once"));
            }
            else
            {
                seen |= 1 << position;
            }
        }
    }

    // RFC 6901 §3: '~' and '/' inside a member name are written ~0 and ~1.
    private static string EscapePointer(string name) => name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    // IPAddress.TryParse also takes legacy IPv4 shorthands ("127.1", "0x7f.0.0.1"); an audit record keeps only the
    // unambiguous dotted quad, which is exactly the IPv4 form that prints back unchanged.
    private static bool IsIpAddress(string text) =>
        IPAddress.TryParse(text, out var address)
        && (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || address.ToString() == text);

    private static Party? ReadParty(JsonElement element, int index, string pointer, List<EventError> errors)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new EventError(index, pointer, "must be an object {type, id, name?}"));
            return null;
        }

        CheckMembers(element, index, pointer, PartyMembers, "type, id, name", errors);

        var type = RequiredText(element, "type", index, errors, MaxTextLength, pointer);
        var id = RequiredText(element, "id", index, errors, MaxTextLength, pointer);
        var name = OptionalText(element, "name", index, errors, MaxTextLength, pointer);
        return type is null || id is null ? null : new Party(type, id, name);
    }

    private static EventContext? ReadContext(JsonElement element, int index, List<EventError> errors)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new EventError(index, "/context", "must be an object {ip?, userAgent?, requestId?}"));
            return null;
        }

        CheckMembers(element, index, "/context", ContextMembers, "ip, userAgent, requestId", errors);

        var ip = OptionalText(element, "ip", index, errors, 64, "/context");
        if (ip is not null && !IsIpAddress(ip))
        {
            errors.Add(new EventError(index, "/context/ip", "must be an IPv4 address in dotted-quad form or an IPv6 address"));
        }

        var userAgent = OptionalText(element, "userAgent", index, errors, MaxUserAgentLength, "/context");
        var requestId = OptionalText(element, "requestId", index, errors, MaxTextLength, "/context");
        return new EventContext(ip, userAgent, requestId);
    }

    private static string? RequiredText(JsonElement element, string name, int index, List<EventError> errors, int maxLength, string pointer = "")
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            errors.Add(new EventError(index, $"{pointer}/{name}", "is required"));
            return null;
        }

        return Text(value, name, index, errors, maxLength, pointer);
    }

    private static string? OptionalText(JsonElement element, string name, int index, List<EventError> errors, int maxLength, string pointer)
    {
        return element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? Text(value, name, index, errors, maxLength, pointer)
            : null;
    }

    private static string? Text(JsonElement value, string name, int index, List<EventError> errors, int maxLength, string pointer)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add(new EventError(index, $"{pointer}/{name}", "must be a string"));
            return null;
        }

        string text;
        try
        {
            text = value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            errors.Add(new EventError(index, $"{pointer}/{name}", "contains an unpaired surrogate"));
            return null;
        }

        if (text.Length == 0 || text.Length > maxLength)
        {
            errors.Add(new EventError(index, $"{pointer}/{name}", $"must be 1 to {maxLength} characters"));
            return null;
        }

        foreach (var c in text)
        {
            if (char.IsControl(c))
            {
                errors.Add(new EventError(index, $"{pointer}/{name}", "must not contain control characters"));
                return null;
            }
        }

        return text;
    }

    private static T? AddMissing<T>(int index, string pointer, List<EventError> errors)
        where T : class
    {
        errors.Add(new EventError(index, pointer, "is required"));
        return null;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
    private static partial Regex TypePattern();

    [GeneratedRegex(@"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    private static partial Regex ActionPattern();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")]
    private static partial Regex Rfc3339Pattern();
}
