using System.Buffers;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
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

    /// <summary>The version of the type's registered schema the data is validated against (null: the latest); not stored in the leaf.</summary>
    public int? SchemaVersion { get; init; }
}

/// <summary>
/// Reads and validates input events (the "Event shape" of the API). Every rule is checked and every failure is
/// reported, so a client fixes a batch in one round trip.
/// </summary>
public static partial class EventReader
{
    public const int MaxTargets = 10;
    public const int MaxDataBytes = 64 * 1024;

    /// <summary>
    /// How deep an event's <c>data</c> may nest (the data object is level 1). Every read path wraps a stored event in
    /// a few more levels (a search page, an item, proofs), so ingest accepts only depths all of them can return.
    /// </summary>
    public const int MaxDataDepth = 32;

    /// <summary>The deepest ingest body: a batch object, its events array and an event around data of <see cref="MaxDataDepth"/>.</summary>
    public const int MaxBodyDepth = MaxDataDepth + 3;
    public const int MaxTextLength = 256;
    public const int MaxUserAgentLength = 1024;

    // UTF-8, so member names are compared without transcoding (this runs for every member of every event).
    private static readonly byte[][] KnownMembers = Utf8("id", "type", "occurredAt", "actor", "action", "targets", "outcome", "context", "data", "schemaVersion");
    private static readonly byte[][] PartyMembers = Utf8("type", "id", "name");
    private static readonly byte[][] ContextMembers = Utf8("ip", "userAgent", "requestId");

    private static readonly string[] TargetPointers = [.. Enumerable.Range(0, MaxTargets).Select(i => $"/targets/{i}")];

    // char.IsControl: the Unicode category Cc, U+0000..U+001F and U+007F..U+009F.
    private static readonly SearchValues<char> Controls = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Select(c => (char)c)]);

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

        CheckMembers(element, index, "", KnownMembers, "id, type, occurredAt, actor, action, targets, outcome, context, data, schemaVersion", errors);

        Guid? id = null;
        if (element.TryGetProperty("id"u8, out var idElement) && idElement.ValueKind != JsonValueKind.Null)
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

        var type = RequiredText(element, "type"u8, index, errors, 128);
        if (type is not null && !TypePattern().IsMatch(type))
        {
            errors.Add(new EventError(index, "/type", "must start with a letter or digit and contain only letters, digits and . _ : / -"));
        }

        var occurredAt = default(DateTimeOffset);
        var occurredText = RequiredText(element, "occurredAt"u8, index, errors, 64);
        if (occurredText is not null && !TryParseTimestamp(occurredText, out occurredAt))
        {
            errors.Add(new EventError(index, "/occurredAt", "must be an RFC 3339 date-time with offset, e.g. 2026-11-26T10:15:30Z"));
        }

        var actor = element.TryGetProperty("actor"u8, out var actorElement)
            ? ReadParty(actorElement, index, "/actor", errors)
            : AddMissing<Party>(index, "/actor", errors);

        var action = RequiredText(element, "action"u8, index, errors, 128);
        if (action is not null && !ActionPattern().IsMatch(action))
        {
            errors.Add(new EventError(index, "/action", "must be resource.verb, e.g. document.update"));
        }

        var targets = new List<Party>();
        if (element.TryGetProperty("targets"u8, out var targetsElement) && targetsElement.ValueKind != JsonValueKind.Null)
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
                    var party = ReadParty(target, index, i < TargetPointers.Length ? TargetPointers[i] : $"/targets/{i}", errors);
                    i++;
                    if (party is not null)
                    {
                        targets.Add(party);
                    }
                }
            }
        }

        var outcome = EventOutcome.Unknown;
        if (element.TryGetProperty("outcome"u8, out var outcomeElement) && outcomeElement.ValueKind != JsonValueKind.Null)
        {
            if (outcomeElement.ValueKind == JsonValueKind.String && ReadOutcome(outcomeElement) is { } read)
            {
                outcome = read;
            }
            else
            {
                errors.Add(new EventError(index, "/outcome", "must be success, failure or unknown"));
            }
        }

        EventContext? context = null;
        if (element.TryGetProperty("context"u8, out var contextElement) && contextElement.ValueKind != JsonValueKind.Null)
        {
            context = ReadContext(contextElement, index, errors);
        }

        JsonElement? data = null;
        ReadOnlyMemory<byte> canonicalData = default;
        if (element.TryGetProperty("data"u8, out var dataElement) && dataElement.ValueKind != JsonValueKind.Null)
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

        int? schemaVersion = null;
        if (element.TryGetProperty("schemaVersion"u8, out var versionElement) && versionElement.ValueKind != JsonValueKind.Null)
        {
            if (versionElement.ValueKind == JsonValueKind.Number && versionElement.TryGetInt32(out var version) && version >= 1)
            {
                schemaVersion = version;
            }
            else
            {
                errors.Add(new EventError(index, "/schemaVersion", "must be a positive integer: a version of the type's registered schema"));
            }
        }

        if (errors.Count > before)
        {
            return null;
        }

        return new EventDraft(id, type!, occurredAt, actor!, action!, targets, outcome, context, data) { CanonicalData = canonicalData, SchemaVersion = schemaVersion };
    }

    /// <summary>Whether <paramref name="type"/> is a valid event type name (the rule ingestion applies to <c>type</c>).</summary>
    public static bool IsValidType(string? type) => type is { Length: > 0 and <= 128 } && TypePattern().IsMatch(type);

    /// <summary>RFC 3339 date-time with a time-zone offset (a bare local time is ambiguous in an audit trail).</summary>
    public static bool TryParseTimestamp(string text, out DateTimeOffset value) =>
        TryParseUsualTimestamp(text, out value) || TryParseTimestampByPattern(text, out value);

    /// <summary>The rule itself: the RFC 3339 pattern, then the framework's ISO 8601 parser for the value.</summary>
    internal static bool TryParseTimestampByPattern(string text, out DateTimeOffset value)
    {
        value = default;
        return Rfc3339Pattern().IsMatch(text)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out value);
    }

    /// <summary>
    /// What clients send, read by hand: <c>yyyy-MM-ddTHH:mm:ss</c>, up to 7 fraction digits, <c>Z</c> or an offset under
    /// 14 hours, a real date, a year from 1000 to 9998 (so the instant is far from DateTimeOffset's limits). Such a text
    /// matches the pattern and the framework parser reads it as exactly this value; anything else (lowercase t or z,
    /// 8 or 9 fraction digits, second 60, edge years and offsets, impossible dates) is left to
    /// <see cref="TryParseTimestampByPattern"/>.
    /// </summary>
    internal static bool TryParseUsualTimestamp(ReadOnlySpan<char> text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':'
            || !TryReadDigits(text[..4], out var year) || !TryReadDigits(text[5..7], out var month) || !TryReadDigits(text[8..10], out var day)
            || !TryReadDigits(text[11..13], out var hour) || !TryReadDigits(text[14..16], out var minute) || !TryReadDigits(text[17..19], out var second))
        {
            return false;
        }

        var rest = text[19..];
        var fractionTicks = 0L;
        if (rest[0] == '.')
        {
            var end = 1;
            while (end < rest.Length && char.IsAsciiDigit(rest[end]))
            {
                end++;
            }

            if (end is 1 or > 8 || !TryReadDigits(rest[1..end], out var fraction))
            {
                return false;
            }

            fractionTicks = fraction;
            for (var digits = end - 1; digits < 7; digits++)
            {
                fractionTicks *= 10;
            }

            rest = rest[end..];
        }

        TimeSpan offset;
        if (rest is ['Z'])
        {
            offset = TimeSpan.Zero;
        }
        else if (rest is ['+' or '-', _, _, ':', _, _] && TryReadDigits(rest[1..3], out var offsetHours) && TryReadDigits(rest[4..6], out var offsetMinutes)
            && offsetHours <= 13 && offsetMinutes <= 59)
        {
            offset = new TimeSpan(offsetHours, offsetMinutes, 0);
            offset = rest[0] == '-' ? -offset : offset;
        }
        else
        {
            return false;
        }

        if (year is < 1000 or > 9998 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        value = new DateTimeOffset(year, month, day, hour, minute, second, offset).AddTicks(fractionTicks);
        return true;
    }

    private static bool TryReadDigits(ReadOnlySpan<char> text, out int value)
    {
        value = 0;
        foreach (var c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    /// <summary>
    /// The data object must have a canonical (RFC 8785) form — no duplicate names, lone surrogates or numbers beyond a
    /// double — and that form, which is what gets stored, must fit in <see cref="MaxDataBytes"/> bytes of UTF-8.
    /// </summary>
    private static string? TryCanonicalizeData(JsonElement data, out ReadOnlyMemory<byte> canonical)
    {
        canonical = default;

        // The canonical form is about as long as the text sent (whitespace goes, escapes and numbers may change
        // length), so the buffer starts there instead of growing to it.
        var output = new LimitedBufferWriter(MaxDataBytes, Math.Clamp(JsonMarshal.GetRawUtf8Value(data).Length, 16, MaxDataBytes));
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

    private static void CheckMembers(JsonElement element, int index, string pointer, byte[][] allowed, string allowedList, List<EventError> errors)
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
        IsDottedQuad(text)
        || (IPAddress.TryParse(text, out var address)
            && (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || address.ToString() == text));

    // Four decimal numbers 0-255 without leading zeros: the IPv4 text that parses and prints back unchanged, checked
    // without parsing and printing it.
    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        for (var part = 0; part < 4; part++)
        {
            if (part > 0)
            {
                if (text.IsEmpty || text[0] != '.')
                {
                    return false;
                }

                text = text[1..];
            }

            var digits = 0;
            var value = 0;
            while (digits < text.Length && digits < 4 && char.IsAsciiDigit(text[digits]))
            {
                value = (value * 10) + (text[digits] - '0');
                digits++;
            }

            if (digits is 0 or 4 || (digits > 1 && text[0] == '0') || value > 255)
            {
                return false;
            }

            text = text[digits..];
        }

        return text.IsEmpty;
    }

    private static Party? ReadParty(JsonElement element, int index, string pointer, List<EventError> errors)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new EventError(index, pointer, "must be an object {type, id, name?}"));
            return null;
        }

        CheckMembers(element, index, pointer, PartyMembers, "type, id, name", errors);

        var type = RequiredText(element, "type"u8, index, errors, MaxTextLength, pointer);
        var id = RequiredText(element, "id"u8, index, errors, MaxTextLength, pointer);
        var name = OptionalText(element, "name"u8, index, errors, MaxTextLength, pointer);
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

        var ip = OptionalText(element, "ip"u8, index, errors, 64, "/context");
        if (ip is not null && !IsIpAddress(ip))
        {
            errors.Add(new EventError(index, "/context/ip", "must be an IPv4 address in dotted-quad form or an IPv6 address"));
        }

        var userAgent = OptionalText(element, "userAgent"u8, index, errors, MaxUserAgentLength, "/context");
        var requestId = OptionalText(element, "requestId"u8, index, errors, MaxTextLength, "/context");
        return new EventContext(ip, userAgent, requestId);
    }

    private static string? RequiredText(JsonElement element, ReadOnlySpan<byte> name, int index, List<EventError> errors, int maxLength, string pointer = "")
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            errors.Add(new EventError(index, Pointer(pointer, name), "is required"));
            return null;
        }

        return Text(value, name, index, errors, maxLength, pointer);
    }

    private static string? OptionalText(JsonElement element, ReadOnlySpan<byte> name, int index, List<EventError> errors, int maxLength, string pointer)
    {
        return element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? Text(value, name, index, errors, maxLength, pointer)
            : null;
    }

    private static string? Text(JsonElement value, ReadOnlySpan<byte> name, int index, List<EventError> errors, int maxLength, string pointer)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add(new EventError(index, Pointer(pointer, name), "must be a string"));
            return null;
        }

        string text;
        try
        {
            text = value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            errors.Add(new EventError(index, Pointer(pointer, name), "contains an unpaired surrogate"));
            return null;
        }

        if (text.Length == 0 || text.Length > maxLength)
        {
            errors.Add(new EventError(index, Pointer(pointer, name), $"must be 1 to {maxLength} characters"));
            return null;
        }

        if (text.AsSpan().ContainsAny(Controls))
        {
            errors.Add(new EventError(index, Pointer(pointer, name), "must not contain control characters"));
            return null;
        }

        return text;
    }

    // Only for errors: the names are ASCII literals.
    private static string Pointer(string parent, ReadOnlySpan<byte> name) => $"{parent}/{Encoding.UTF8.GetString(name)}";

    // The outcome compared as UTF-8 with each valid value (unescaped by ValueEquals), so nothing is decoded; anything
    // else is not an outcome.
    private static string? ReadOutcome(JsonElement element) =>
        element.ValueEquals("success"u8) ? EventOutcome.Success
        : element.ValueEquals("failure"u8) ? EventOutcome.Failure
        : element.ValueEquals("unknown"u8) ? EventOutcome.Unknown
        : null;

    private static byte[][] Utf8(params string[] names) => [.. names.Select(Encoding.UTF8.GetBytes)];

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
