using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Core.Events;

/// <summary>
/// The leaf bytes of an event: its stored JSON in RFC 8785 canonical form. What a client fetches from
/// <c>GET …/log/entries/{index}</c> and hashes into the tree is exactly this.
/// </summary>
public static class LeafWriter
{
    /// <summary>Canonical leaf bytes.</summary>
    public static byte[] ToLeaf(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var output = new ArrayBufferWriter<byte>(1024);
        WriteCanonical(output, auditEvent, includeReceivedAt: true);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// SHA-256 of the canonical event without its receive time: what the client asserted. Two submissions of the same
    /// event id are the same event exactly when these match.
    /// </summary>
    public static Hash ContentHash(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var output = new ArrayBufferWriter<byte>(1024);
        WriteCanonical(output, auditEvent, includeReceivedAt: false);
        return Hash.Sha256(output.WrittenSpan);
    }

    /// <summary>
    /// <see cref="ContentHash(AuditEvent)"/> of a stored leaf: the same canonical JSON with its <c>receivedAt</c>
    /// member left out.
    /// </summary>
    public static Hash ContentHashOfLeaf(ReadOnlyMemory<byte> leaf)
    {
        using var document = JsonDocument.Parse(leaf);
        var json = new ArrayBufferWriter<byte>(leaf.Length);
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            foreach (var member in document.RootElement.EnumerateObject())
            {
                if (member.NameEquals("receivedAt"))
                {
                    continue;
                }

                member.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return Hash.Sha256(JsonCanonicalizer.Canonicalize(json.WrittenMemory));
    }

    /// <summary>Timestamps in leaves: UTC, RFC 3339, trailing zero fractions dropped.</summary>
    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    // The event's members are known, so they are written directly in RFC 8785 order (names sorted by UTF-16 code
    // units) with JCS string escaping; only the free-form data object goes through the general canonicalizer. One
    // pass, no re-parse: this is the hot path of ingestion.
    private static void WriteCanonical(IBufferWriter<byte> output, AuditEvent e, bool includeReceivedAt)
    {
        Raw(output, "{\"action\":"u8);
        JsonCanonicalizer.WriteString(e.Action, output);
        Raw(output, ",\"actor\":"u8);
        WriteParty(output, e.Actor);
        if (e.Context is { } context)
        {
            Raw(output, ",\"context\":{"u8);
            var first = true;
            Optional(output, "\"ip\":"u8, context.Ip, ref first);
            Optional(output, "\"requestId\":"u8, context.RequestId, ref first);
            Optional(output, "\"userAgent\":"u8, context.UserAgent, ref first);
            Raw(output, "}"u8);
        }

        if (!e.CanonicalData.IsEmpty)
        {
            Raw(output, ",\"data\":"u8);
            Raw(output, e.CanonicalData.Span);
        }
        else if (e.Data is { } data)
        {
            Raw(output, ",\"data\":"u8);
            JsonCanonicalizer.Write(data, output);
        }

        Raw(output, ",\"id\":\""u8);
        Ascii(output, e.Id.ToString("D"));
        Raw(output, "\",\"occurredAt\":\""u8);
        Ascii(output, FormatTimestamp(e.OccurredAt));
        Raw(output, "\",\"outcome\":"u8);
        JsonCanonicalizer.WriteString(e.Outcome, output);
        if (includeReceivedAt)
        {
            Raw(output, ",\"receivedAt\":\""u8);
            Ascii(output, FormatTimestamp(e.ReceivedAt));
            Raw(output, "\""u8);
        }

        Raw(output, ",\"targets\":["u8);
        for (var i = 0; i < e.Targets.Count; i++)
        {
            if (i > 0)
            {
                Raw(output, ","u8);
            }

            WriteParty(output, e.Targets[i]);
        }

        Raw(output, "],\"type\":"u8);
        JsonCanonicalizer.WriteString(e.Type, output);
        Raw(output, "}"u8);
    }

    private static void WriteParty(IBufferWriter<byte> output, Party party)
    {
        Raw(output, "{\"id\":"u8);
        JsonCanonicalizer.WriteString(party.Id, output);
        if (party.Name is not null)
        {
            Raw(output, ",\"name\":"u8);
            JsonCanonicalizer.WriteString(party.Name, output);
        }

        Raw(output, ",\"type\":"u8);
        JsonCanonicalizer.WriteString(party.Type, output);
        Raw(output, "}"u8);
    }

    private static void Optional(IBufferWriter<byte> output, ReadOnlySpan<byte> name, string? value, ref bool first)
    {
        if (value is null)
        {
            return;
        }

        if (!first)
        {
            Raw(output, ","u8);
        }

        first = false;
        Raw(output, name);
        JsonCanonicalizer.WriteString(value, output);
    }

    private static void Raw(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);

    // Only for values that are ASCII by construction (UUIDs, timestamps) and need no escaping.
    private static void Ascii(IBufferWriter<byte> output, string value)
    {
        var span = output.GetSpan(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            span[i] = (byte)value[i];
        }

        output.Advance(value.Length);
    }
}
