using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Atp.Integrity;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS): the byte form of a leaf. Input must be I-JSON (RFC 7493): no
/// duplicate member names, no lone surrogates, numbers that fit an IEEE-754 double.
/// </summary>
public static class JsonCanonicalizer
{
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };

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
                WriteString(ReadString(element), output);
                break;
            case JsonValueKind.Number:
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

    private static void WriteObject(JsonElement element, IBufferWriter<byte> output)
    {
        // RFC 8785 §3.2.3: members sorted by their names as arrays of UTF-16 code units. Pooled arrays: this runs
        // for every object of every event on the ingestion path.
        var count = element.GetPropertyCount();
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
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    i++;
                    continue;
                }

                throw new JsonException("A string contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2).");
            }

            if (c >= 0x20 && c != '"' && c != '\\')
            {
                continue;
            }

            WriteUtf8(output, value.AsSpan(start, i - start));
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
            start = i + 1;
        }

        WriteUtf8(output, value.AsSpan(start));
        WriteByte(output, (byte)'"');
    }

    private static void WriteUtf8(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }

        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
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
}
