using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Atp.Integrity;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS): the byte form of a leaf. Input must be I-JSON (RFC 7493): no
/// duplicate member names, no lone surrogates, numbers that fit an IEEE-754 double.
/// </summary>
public static class JsonCanonicalizer
{
    // Objects up to this many members with plain names are ordered by an insertion sort of their raw names; larger
    // ones take the general path.
    private const int MaxPlainObjectMembers = 32;

    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };

    // What RFC 8785 §3.2.2.2 escapes: '"', '\\' and the C0 controls.
    private static readonly SearchValues<char> EscapedChars = SearchValues.Create(EscapedSet());
    private static readonly SearchValues<byte> EscapedBytes = SearchValues.Create(Encoding.ASCII.GetBytes(EscapedSet()));

    // A member name of only these bytes is its own UTF-16 code units (so byte order is JCS order) and needs no escape.
    private static readonly SearchValues<byte> PlainNameBytes = SearchValues.Create(
        Enumerable.Range(0x20, 0x7F - 0x20).Select(b => (byte)b).Where(b => b is not (byte)'"' and not (byte)'\\').ToArray());

    /// <summary>Canonicalizes UTF-8 JSON text.</summary>
    /// <exception cref="JsonException">The input is not JSON, or is JSON that JCS cannot represent (see remarks).</exception>
    public static byte[] Canonicalize(ReadOnlyMemory<byte> utf8Json)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, utf8Json.Length));
        Canonicalize(utf8Json, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Canonicalizes UTF-8 JSON text into <paramref name="output"/>.</summary>
    public static void Canonicalize(ReadOnlyMemory<byte> utf8Json, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        using var document = JsonDocument.Parse(utf8Json, ParseOptions);
        Write(document.RootElement, output);
    }

    /// <summary>Canonicalizes a parsed JSON value into <paramref name="output"/>.</summary>
    public static void Write(JsonElement element, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                WriteObject(element, output);
                break;
            case JsonValueKind.Array:
                WriteByte(output, (byte)'[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        WriteByte(output, (byte)',');
                    }

                    first = false;
                    Write(item, output);
                }

                WriteByte(output, (byte)']');
                break;
            case JsonValueKind.String:
                if (!TryWriteRawString(element, output))
                {
                    WriteString(ReadString(element), output);
                }

                break;
            case JsonValueKind.Number:
                if (TryWriteRawInteger(element, output))
                {
                    break;
                }

                if (!element.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    throw new JsonException($"The number {element.GetRawText()} does not fit an IEEE-754 double (RFC 8785 §3.2.2.3).");
                }

                WriteAscii(output, FormatNumber(number));
                break;
            case JsonValueKind.True:
                WriteAscii(output, "true");
                break;
            case JsonValueKind.False:
                WriteAscii(output, "false");
                break;
            case JsonValueKind.Null:
                WriteAscii(output, "null");
                break;
            default:
                throw new JsonException($"Unexpected JSON value kind {element.ValueKind}.");
        }
    }

    /// <summary>
    /// ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) of a finite double, as RFC 8785 §3.2.2.3 requires: the
    /// shortest digits that round-trip, placed in fixed or exponent notation by the ES rules.
    /// </summary>
    public static string FormatNumber(double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), "NaN and infinities have no JSON form.");
        }

        if (value == 0)
        {
            return "0"; // also for -0
        }

        // .NET's "R" yields the shortest round-trip digits; only their placement differs from ECMAScript.
        var roundTrip = value.ToString("R", CultureInfo.InvariantCulture);
        var negative = roundTrip[0] == '-';
        var body = negative ? roundTrip.AsSpan(1) : roundTrip.AsSpan();

        // Split "d.dddE±x" or "ddd.ddd" into the digit string and the decimal exponent n (value = 0.digits × 10^n).
        var exponentAt = body.IndexOfAny('E', 'e');
        var mantissa = exponentAt >= 0 ? body[..exponentAt] : body;
        var exponent = exponentAt >= 0 ? int.Parse(body[(exponentAt + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        var point = mantissa.IndexOf('.');
        var integerDigits = point >= 0 ? point : mantissa.Length;
        Span<char> digitBuffer = stackalloc char[32];
        var count = 0;
        foreach (var c in mantissa)
        {
            if (c != '.')
            {
                digitBuffer[count++] = c;
            }
        }

        var digits = digitBuffer[..count];
        var leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0')
        {
            leadingZeros++;
        }

        digits = digits[leadingZeros..];
        var n = integerDigits - leadingZeros + exponent;
        digits = digits.TrimEnd('0');
        var k = digits.Length;

        var result = new StringBuilder(32);
        if (negative)
        {
            result.Append('-');
        }

        if (k <= n && n <= 21)
        {
            result.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            result.Append(digits[..n]).Append('.').Append(digits[n..]);
        }
        else if (-6 < n && n <= 0)
        {
            result.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            var e = n - 1;
            result.Append(digits[0]);
            if (k > 1)
            {
                result.Append('.').Append(digits[1..]);
            }

            result.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e).ToString(CultureInfo.InvariantCulture));
        }

        return result.ToString();
    }

    // A string whose raw text has no escape sequence and is valid UTF-8 is already in canonical form: it holds no
    // '"', '\\' or control (those would be escaped) and, being valid UTF-8, no surrogate code point. Anything else
    // goes through the string, which reports errors as before.
    private static bool TryWriteRawString(JsonElement element, IBufferWriter<byte> output)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element);
        if (raw.Length < 2 || raw[0] != (byte)'"' || raw[^1] != (byte)'"')
        {
            return false;
        }

        var content = raw[1..^1];
        if (content.ContainsAny(EscapedBytes) || !Utf8.IsValid(content))
        {
            return false;
        }

        output.Write(raw);
        return true;
    }

    // An integer of at most 15 digits is exactly a double, and ECMAScript prints such a double as those digits; JSON
    // forbids leading zeros, so only "-0" (printed "0") differs from its text.
    private static bool TryWriteRawInteger(JsonElement element, IBufferWriter<byte> output)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element);
        var digits = raw.Length > 0 && raw[0] == (byte)'-' ? raw[1..] : raw;
        if (digits.IsEmpty || digits.Length > 15 || digits.ContainsAnyExceptInRange((byte)'0', (byte)'9')
            || (digits[0] == (byte)'0' && (digits.Length > 1 || digits.Length != raw.Length)))
        {
            return false;
        }

        output.Write(raw);
        return true;
    }

    private static void WriteObject(JsonElement element, IBufferWriter<byte> output)
    {
        var count = element.GetPropertyCount();
        if (count <= MaxPlainObjectMembers && TryWritePlainObject(element, count, output))
        {
            return;
        }

        // RFC 8785 §3.2.3: members sorted by their names as arrays of UTF-16 code units. Pooled arrays: this runs
        // for every object of every event on the ingestion path.
        var names = ArrayPool<string>.Shared.Rent(Math.Max(count, 1));
        var values = ArrayPool<JsonElement>.Shared.Rent(Math.Max(count, 1));
        try
        {
            var n = 0;
            foreach (var property in element.EnumerateObject())
            {
                names[n] = ReadName(property);
                values[n] = property.Value;
                n++;
            }

            Array.Sort(names, values, 0, n, StringComparer.Ordinal);
            WriteByte(output, (byte)'{');
            for (var i = 0; i < n; i++)
            {
                if (i > 0)
                {
                    if (string.Equals(names[i], names[i - 1], StringComparison.Ordinal))
                    {
                        throw new JsonException($"Duplicate member name \"{names[i]}\" (I-JSON forbids it, RFC 8785 §3.1).");
                    }

                    WriteByte(output, (byte)',');
                }

                WriteString(names[i], output);
                WriteByte(output, (byte)':');
                Write(values[i], output);
            }

            WriteByte(output, (byte)'}');
        }
        finally
        {
            ArrayPool<string>.Shared.Return(names, clearArray: true);
            ArrayPool<JsonElement>.Shared.Return(values, clearArray: true);
        }
    }

    // The usual object: names of printable ASCII without escapes, so sorting and comparing their raw UTF-8 bytes is
    // sorting and comparing their UTF-16 code units, and they are written as they are. Nothing is written unless
    // every name is plain and none repeats; otherwise the general path produces the output or the error.
    private static bool TryWritePlainObject(JsonElement element, int count, IBufferWriter<byte> output)
    {
        var members = ArrayPool<JsonProperty>.Shared.Rent(Math.Max(count, 1));
        try
        {
            var n = 0;
            foreach (var property in element.EnumerateObject())
            {
                if (JsonMarshal.GetRawUtf8PropertyName(property).ContainsAnyExcept(PlainNameBytes))
                {
                    return false;
                }

                // Insertion sort: the members of audit data are few and often already in order.
                var at = n;
                while (at > 0)
                {
                    var order = JsonMarshal.GetRawUtf8PropertyName(members[at - 1]).SequenceCompareTo(JsonMarshal.GetRawUtf8PropertyName(property));
                    if (order == 0)
                    {
                        return false;
                    }

                    if (order < 0)
                    {
                        break;
                    }

                    members[at] = members[at - 1];
                    at--;
                }

                members[at] = property;
                n++;
            }

            WriteByte(output, (byte)'{');
            for (var i = 0; i < n; i++)
            {
                if (i > 0)
                {
                    WriteByte(output, (byte)',');
                }

                var name = JsonMarshal.GetRawUtf8PropertyName(members[i]);
                var span = output.GetSpan(name.Length + 3);
                span[0] = (byte)'"';
                name.CopyTo(span[1..]);
                span[name.Length + 1] = (byte)'"';
                span[name.Length + 2] = (byte)':';
                output.Advance(name.Length + 3);
                Write(members[i].Value, output);
            }

            WriteByte(output, (byte)'}');
            return true;
        }
        finally
        {
            ArrayPool<JsonProperty>.Shared.Return(members, clearArray: true);
        }
    }

    // System.Text.Json reports an escaped lone surrogate as InvalidOperationException; to callers it is bad JSON.
    private static string ReadString(JsonElement element)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException("A string contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2).", e);
        }
    }

    private static string ReadName(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException("A member name contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2).", e);
        }
    }

    // RFC 8785 §3.2.2.2: escape only '"', '\\' and controls (short forms where JSON has them, else \u00xx lowercase).
    /// <summary>Writes a string as RFC 8785 §3.2.2.2 requires, quotes included (for writers of canonical JSON by hand).</summary>
    /// <exception cref="JsonException">The string holds an unpaired surrogate.</exception>
    public static void WriteString(string value, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(output);
        WriteByte(output, (byte)'"');
        var rest = value.AsSpan();
        while (true)
        {
            var at = rest.IndexOfAny(EscapedChars);
            WriteUtf8(output, at < 0 ? rest : rest[..at]);
            if (at < 0)
            {
                break;
            }

            var c = rest[at];
            var escape = c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
            };
            WriteAscii(output, escape);
            rest = rest[(at + 1)..];
        }

        WriteByte(output, (byte)'"');
    }

    // Escapes are ASCII, so a surrogate pair never spans two runs: a run that does not transcode holds an unpaired
    // surrogate. Nothing of such a run is written.
    private static void WriteUtf8(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }

        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        if (Utf8.FromUtf16(text, span, out _, out var written, replaceInvalidSequences: false) != OperationStatus.Done)
        {
            throw new JsonException("A string contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2).");
        }

        output.Advance(written);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            span[i] = (byte)text[i];
        }

        output.Advance(text.Length);
    }

    private static void WriteByte(IBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    private static string EscapedSet() => string.Create(34, 0, static (set, _) =>
    {
        for (var c = 0; c < 0x20; c++)
        {
            set[c] = (char)c;
        }

        set[0x20] = '"';
        set[0x21] = '\\';
    });
}
