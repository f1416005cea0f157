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
        var json = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(json))
        {
            Write(writer, auditEvent, includeReceivedAt: true);
        }

        return JsonCanonicalizer.Canonicalize(json.WrittenMemory);
    }

    /// <summary>
    /// SHA-256 of the canonical event without its receive time: what the client asserted. Two submissions of the same
    /// event id are the same event exactly when these match.
    /// </summary>
    public static Hash ContentHash(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var json = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(json))
        {
            Write(writer, auditEvent, includeReceivedAt: false);
        }

        return Hash.Sha256(JsonCanonicalizer.Canonicalize(json.WrittenMemory));
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

    private static void Write(Utf8JsonWriter writer, AuditEvent e, bool includeReceivedAt)
    {
        writer.WriteStartObject();
        writer.WriteString("id", e.Id.ToString("D"));
        writer.WriteString("type", e.Type);
        writer.WriteString("occurredAt", FormatTimestamp(e.OccurredAt));
        if (includeReceivedAt)
        {
            writer.WriteString("receivedAt", FormatTimestamp(e.ReceivedAt));
        }

        writer.WritePropertyName("actor");
        WriteParty(writer, e.Actor);
        writer.WriteString("action", e.Action);
        writer.WriteStartArray("targets");
        foreach (var target in e.Targets)
        {
            WriteParty(writer, target);
        }

        writer.WriteEndArray();
        writer.WriteString("outcome", e.Outcome);
        if (e.Context is { } context)
        {
            writer.WriteStartObject("context");
            WriteOptional(writer, "ip", context.Ip);
            WriteOptional(writer, "userAgent", context.UserAgent);
            WriteOptional(writer, "requestId", context.RequestId);
            writer.WriteEndObject();
        }

        if (e.Data is { } data)
        {
            writer.WritePropertyName("data");
            data.WriteTo(writer);
        }

        writer.WriteEndObject();
    }

    private static void WriteParty(Utf8JsonWriter writer, Party party)
    {
        writer.WriteStartObject();
        writer.WriteString("type", party.Type);
        writer.WriteString("id", party.Id);
        WriteOptional(writer, "name", party.Name);
        writer.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
