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
    // A buffer per thread for the leaf being written: the leaf is copied out at the exact size, so the only allocation
    // per event is the leaf itself. One that grew for an unusually large event is not kept.
    private const int KeptBufferBytes = 16 * 1024;

    /// <summary>
    /// The largest leaf a log accepts: C2SP tlog-tiles entry bundles prefix each entry with a 16-bit length, so a
    /// larger leaf could never be mirrored. Ingest refuses an event whose leaf would exceed it.
    /// </summary>
    public const int MaxLeafBytes = ushort.MaxValue;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    /// <summary>Canonical leaf bytes.</summary>
    public static byte[] ToLeaf(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var output = RentBuffer();
        WriteCanonical(output, auditEvent, includeReceivedAt: true);
        var leaf = output.WrittenSpan.ToArray();
        ReturnBuffer(output);
        return leaf;
    }

    /// <summary>
    /// SHA-256 of the canonical event without its receive time: what the client asserted. Two submissions of the same
    /// event id are the same event exactly when these match.
    /// </summary>
    public static Hash ContentHash(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var output = RentBuffer();
        WriteCanonical(output, auditEvent, includeReceivedAt: false);
        var hash = Hash.Sha256(output.WrittenSpan);
        ReturnBuffer(output);
        return hash;
    }

    /// <summary>
    /// <see cref="ContentHash(AuditEvent)"/> of a stored leaf: the same canonical JSON with its <c>receivedAt</c> and
    /// <c>submittedBy</c> members left out.
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
                if (member.NameEquals("receivedAt") || member.NameEquals("submittedBy"))
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
        WriteId(output, e.Id);
        Raw(output, "\",\"occurredAt\":\""u8);
        WriteTimestamp(output, e.OccurredAt);
        Raw(output, "\",\"outcome\":"u8);
        JsonCanonicalizer.WriteString(e.Outcome, output);
        if (includeReceivedAt)
        {
            Raw(output, ",\"receivedAt\":\""u8);
            WriteTimestamp(output, e.ReceivedAt);
            Raw(output, "\""u8);

            // Like the receive time, the submitter is the server's record, not the client's content.
            if (e.SubmittedBy is { } submitter)
            {
                Raw(output, ",\"submittedBy\":"u8);
                WriteIdentified(output, submitter.Id, ",\"issuer\":"u8, submitter.Issuer, submitter.Type);
            }
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

    private static void WriteParty(IBufferWriter<byte> output, Party party) =>
        WriteIdentified(output, party.Id, ",\"name\":"u8, party.Name, party.Type);

    // {"id", an optional member whose name sorts between "id" and "type", "type"}: a party or a submitter.
    private static void WriteIdentified(IBufferWriter<byte> output, string id, ReadOnlySpan<byte> optionalName, string? optionalValue, string type)
    {
        Raw(output, "{\"id\":"u8);
        JsonCanonicalizer.WriteString(id, output);
        if (optionalValue is not null)
        {
            Raw(output, optionalName);
            JsonCanonicalizer.WriteString(optionalValue, output);
        }

        Raw(output, ",\"type\":"u8);
        JsonCanonicalizer.WriteString(type, output);
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

    private static void WriteId(IBufferWriter<byte> output, Guid id)
    {
        var span = output.GetSpan(36);
        if (!id.TryFormat(span, out var written, "D"))
        {
            throw new InvalidOperationException("A UUID did not fit its 36 characters.");
        }

        output.Advance(written);
    }

    /// <summary>
    /// <see cref="FormatTimestamp"/> written straight into the leaf: <c>yyyy-MM-ddTHH:mm:ss</c>, then the seven-digit
    /// fraction without its trailing zeros (and without the point when nothing is left), then <c>Z</c>.
    /// </summary>
    internal static void WriteTimestamp(IBufferWriter<byte> output, DateTimeOffset value)
    {
        var utc = value.UtcDateTime;
        var span = output.GetSpan(28);
        Digits(span[..4], utc.Year);
        span[4] = (byte)'-';
        Digits(span[5..7], utc.Month);
        span[7] = (byte)'-';
        Digits(span[8..10], utc.Day);
        span[10] = (byte)'T';
        Digits(span[11..13], utc.Hour);
        span[13] = (byte)':';
        Digits(span[14..16], utc.Minute);
        span[16] = (byte)':';
        Digits(span[17..19], utc.Second);
        var length = 19;
        var fraction = (int)(utc.Ticks % TimeSpan.TicksPerSecond);
        if (fraction != 0)
        {
            var digits = 7;
            while (fraction % 10 == 0)
            {
                fraction /= 10;
                digits--;
            }

            span[19] = (byte)'.';
            Digits(span.Slice(20, digits), fraction);
            length = 20 + digits;
        }

        span[length] = (byte)'Z';
        output.Advance(length + 1);
    }

    // The last digits of a non-negative value, zero-padded to the span's length.
    private static void Digits(Span<byte> span, int value)
    {
        for (var i = span.Length - 1; i >= 0; i--)
        {
            span[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    private static ArrayBufferWriter<byte> RentBuffer()
    {
        var buffer = t_buffer ?? new ArrayBufferWriter<byte>(2048);
        t_buffer = null;
        buffer.ResetWrittenCount();
        return buffer;
    }

    private static void ReturnBuffer(ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity <= KeptBufferBytes)
        {
            t_buffer = buffer;
        }
    }
}
