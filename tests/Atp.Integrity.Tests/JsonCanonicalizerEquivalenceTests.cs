using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;

namespace Atp.Integrity.Tests;

/// <summary>
/// The canonicalizer takes short cuts on raw UTF-8 (plain names, strings without escapes, short integers). Here its
/// output, or its error, is compared with a plain reference that always decodes to .NET strings, sorts them with
/// ordinal comparison and escapes char by char, on inputs built to hit every boundary of those short cuts.
/// </summary>
public sealed class JsonCanonicalizerEquivalenceTests
{
    // Raw JSON text of string content: plain ASCII, escapes (some of plain letters, some of lone surrogates), raw
    // non-ASCII on both sides of the UTF-8/UTF-16 order difference (U+E000..U+FFFF against supplementary planes), DEL,
    // and raw bytes that are not UTF-8 (which the parser lets through).
    private static readonly byte[][] PlainFragments = [.. new[] { "a", "b", "c", "ab", "ba", "B", "Z", "_", "0", "9", "~", " ", "a b", "zz", "id", "type", "{}", "[x]", "'" }.Select(Encoding.UTF8.GetBytes)];
    private static readonly byte[][] EscapedFragments = [.. new[] { @"\u0061", @"\n", @"\""", @"\\", @"\/", @"\u0000", @"\u001f", @"\u007f", @"\u00e9", @"\ud83d\ude00", @"\ud800", @"\udc00", @"\t", @"\b" }.Select(Encoding.UTF8.GetBytes)];
    private static readonly byte[][] NonAsciiFragments = [.. new[] { "é", "€", "\ufb33", "😀", "\ue000", "\u0080", "ö", "\uffff", "\U0010ffff", "\u007f" }.Select(Encoding.UTF8.GetBytes)];
    private static readonly byte[][] InvalidUtf8Fragments = [[0xFF], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xE2, 0x82], [0x80]];

    private static readonly string[] Numbers =
    [
        "0", "-0", "1", "-1", "7", "10", "100", "123456789012345", "-999999999999999", "1234567890123456", "9007199254740993",
        "99999999999999999999", "100000000000000000000000", "1.5", "-0.0", "1.0", "1e2", "1E400", "-1e400", "0.000001", "1e-7", "5e-324",
    ];

    private static readonly Gen<byte[]> Fragment = Gen.Frequency(
        (8, (IGen<byte[]>)Gen.OneOf(PlainFragments)),
        (2, Gen.OneOf(EscapedFragments)),
        (2, Gen.OneOf(NonAsciiFragments)),
        (1, Gen.OneOf(InvalidUtf8Fragments)));

    private static readonly Gen<byte[]> Text = Fragment.Array[0, 3].Select(parts => Concat([[(byte)'"'], .. parts, [(byte)'"']]));

    // Names mostly from a few plain ones, so duplicates and every ordering occur often.
    private static readonly Gen<byte[]> Name = Gen.Frequency(
        (6, (IGen<byte[]>)Gen.OneOf(PlainFragments).Select(p => Concat([[(byte)'"'], p, [(byte)'"']]))),
        (2, Text));

    private static readonly Gen<byte[]> Scalar = Gen.Frequency(
        (4, (IGen<byte[]>)Text),
        (3, Gen.OneOf(Numbers).Select(Encoding.UTF8.GetBytes)),
        (1, Gen.OneOf("true"u8.ToArray(), "false"u8.ToArray(), "null"u8.ToArray())));

    private static readonly Gen<byte[]> Value = Gen.Recursive<byte[]>((depth, value) => depth >= 3
        ? Scalar
        : Gen.Frequency(
            (4, (IGen<byte[]>)Scalar),
            (2, Members(value, Gen.Int[0, 6])),
            (1, Members(value, Gen.Int[28, 40])),
            (1, value.Array[0, 4].Select(items => Join((byte)'[', items, (byte)']')))));

    private static readonly Gen<byte[]> Document = Gen.Frequency(
        (6, (IGen<byte[]>)Members(Value, Gen.Int[0, 8])),
        (1, Members(Value, Gen.Int[28, 40])),
        (2, Value));

    [Fact]
    public void Matches_the_reference_on_generated_documents()
    {
        Document.Sample(json => Assert.Equal(Reference(json), Actual(json)), iter: 20_000);
    }

    [Fact]
    public void Strings_written_from_text_match_the_reference_on_generated_strings()
    {
        var chars = Gen.Frequency(
            (6, (IGen<char>)Gen.Char['a', 'z']),
            (2, Gen.Char[(char)0, (char)0x7F]),
            (2, Gen.Char[(char)0x80, (char)0xFFFF]),
            (1, Gen.OneOf('\ud83d', '\ude00', '"', '\\')));
        chars.Array[0, 40].Select(c => new string(c)).Sample(text =>
        {
            Assert.Equal(ReferenceOutcome(() => ReferenceString(text)), ReferenceOutcome(() => Written(text)));
        }, iter: 20_000);
    }

    [Theory]
    [InlineData("""{"b":1,"a":2,"c":3}""", """{"a":2,"b":1,"c":3}""")]
    [InlineData("""{"c":{"z":0,"y":[{"b":true,"a":null}]},"a":"x"}""", """{"a":"x","c":{"y":[{"a":null,"b":true}],"z":0}}""")]
    [InlineData("""{"aa":1,"a":2,"a_":3,"A":4,"~":5," ":6}""", """{" ":6,"A":4,"a":2,"a_":3,"aa":1,"~":5}""")]
    [InlineData("""{"\ufb33":1,"\ud83d\ude00":2,"z":3}""", "{\"z\":3,\"😀\":2,\"\ufb33\":1}")]
    [InlineData("""{"\u0062":1,"a":2}""", """{"a":2,"b":1}""")]
    [InlineData("""{"a\"b":1,"a":2}""", """{"a":2,"a\"b":1}""")]
    [InlineData("""["a\u0000b", "caf\u00e9", "café", "\/", 1, -0, 123456789012345, 1234567890123456, 10, 1.0]""", """["a\u0000b","café","café","/",1,0,123456789012345,1234567890123456,10,1]""")]
    public void Canonical_forms_of_objects_in_any_order_and_with_any_names(string input, string expected)
    {
        Assert.Equal(expected, Encoding.UTF8.GetString(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(input))));
    }

    [Theory]
    [InlineData("""{"a":1,"b":2,"a":3}""", "Duplicate member name \"a\"")]
    [InlineData("""{"a":1,"\u0061":2}""", "Duplicate member name \"a\"")]
    [InlineData("""{"é":1,"é":2}""", "Duplicate member name \"é\"")]
    public void Duplicate_names_are_refused_however_they_are_spelled(string input, string message)
    {
        var error = Assert.Throws<JsonException>(() => JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(input)));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_bytes_that_are_not_utf8_are_refused_in_strings_and_names()
    {
        Assert.Throws<JsonException>(() => JsonCanonicalizer.Canonicalize(new byte[] { (byte)'"', 0xED, 0xA0, 0x80, (byte)'"' }));
        Assert.Throws<JsonException>(() => JsonCanonicalizer.Canonicalize(new byte[] { (byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}' }));
    }

    [Fact]
    public void Objects_of_more_than_32_members_are_sorted_too()
    {
        var names = Enumerable.Range(0, 40).Select(i => $"k{(i * 17) % 40:D2}").ToArray();
        var input = "{" + string.Join(',', names.Select(n => $"\"{n}\":\"{n}\"")) + "}";
        var expected = "{" + string.Join(',', names.Order(StringComparer.Ordinal).Select(n => $"\"{n}\":\"{n}\"")) + "}";
        Assert.Equal(expected, Encoding.UTF8.GetString(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(input))));
    }

    private static Gen<byte[]> Members(Gen<byte[]> value, Gen<int> count) =>
        count.SelectMany(n => Gen.Select(Name, value).Array[n]).Select(members =>
            Join((byte)'{', [.. members.Select(m => Concat([m.Item1, [(byte)':'], m.Item2]))], (byte)'}'));

    private static byte[] Join(byte open, byte[][] items, byte close)
    {
        var parts = new List<byte[]> { new[] { open } };
        for (var i = 0; i < items.Length; i++)
        {
            if (i > 0)
            {
                parts.Add([(byte)',']);
            }

            parts.Add(items[i]);
        }

        parts.Add([close]);
        return Concat([.. parts]);
    }

    private static byte[] Concat(byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static string Actual(byte[] json) => ReferenceOutcome(() => JsonCanonicalizer.Canonicalize(json));

    private static string Reference(byte[] json) => ReferenceOutcome(() =>
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        var output = new ArrayBufferWriter<byte>();
        ReferenceValue(document.RootElement, output);
        return output.WrittenSpan.ToArray();
    });

    private static string ReferenceOutcome(Func<byte[]> run)
    {
        try
        {
            return Convert.ToHexString(run());
        }
        catch (JsonException e)
        {
            return "error: " + e.Message;
        }
    }

    private static byte[] Written(string text)
    {
        var output = new ArrayBufferWriter<byte>();
        JsonCanonicalizer.WriteString(text, output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] ReferenceString(string text)
    {
        var output = new ArrayBufferWriter<byte>();
        ReferenceString(text, output);
        return output.WrittenSpan.ToArray();
    }

    // The whole value as .NET strings and doubles: names decoded and sorted ordinally (UTF-16 code units), duplicates
    // found after sorting, errors in the order the members are written.
    private static void ReferenceValue(JsonElement element, ArrayBufferWriter<byte> output)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var members = new List<(string Name, JsonElement Value)>();
                foreach (var property in element.EnumerateObject())
                {
                    members.Add((Decode(() => property.Name, "A member name contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2)."), property.Value));
                }

                members.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));
                output.Write("{"u8);
                for (var i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        if (members[i].Name == members[i - 1].Name)
                        {
                            throw new JsonException($"Duplicate member name \"{members[i].Name}\" (I-JSON forbids it, RFC 8785 §3.1).");
                        }

                        output.Write(","u8);
                    }

                    ReferenceString(members[i].Name, output);
                    output.Write(":"u8);
                    ReferenceValue(members[i].Value, output);
                }

                output.Write("}"u8);
                break;
            case JsonValueKind.Array:
                output.Write("["u8);
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        output.Write(","u8);
                    }

                    first = false;
                    ReferenceValue(item, output);
                }

                output.Write("]"u8);
                break;
            case JsonValueKind.String:
                ReferenceString(Decode(() => element.GetString()!, "A string contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2)."), output);
                break;
            case JsonValueKind.Number:
                if (!element.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    throw new JsonException($"The number {element.GetRawText()} does not fit an IEEE-754 double (RFC 8785 §3.2.2.3).");
                }

                output.Write(Encoding.ASCII.GetBytes(JsonCanonicalizer.FormatNumber(number)));
                break;
            default:
                output.Write(Encoding.ASCII.GetBytes(element.GetRawText()));
                break;
        }
    }

    private static string Decode(Func<string> read, string message)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException)
        {
            throw new JsonException(message);
        }
    }

    private static void ReferenceString(string text, ArrayBufferWriter<byte> output)
    {
        var builder = new StringBuilder("\"");
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                builder.Append(c).Append(text[++i]);
            }
            else if (char.IsSurrogate(c))
            {
                throw new JsonException("A string contains an unpaired surrogate, which has no UTF-8 form (RFC 8785 §3.2.2.2).");
            }
            else
            {
                builder.Append(c switch
                {
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    '\b' => "\\b",
                    '\f' => "\\f",
                    '\n' => "\\n",
                    '\r' => "\\r",
                    '\t' => "\\t",
                    < ' ' => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                    _ => c.ToString(),
                });
            }
        }

        output.Write(Encoding.UTF8.GetBytes(builder.Append('"').ToString()));
    }
}
