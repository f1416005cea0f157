using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Atp.Integrity.Tests;

/// <summary>RFC 8785 examples, its Appendix B number samples, and 10,000 numbers formatted by V8 (TestData/jcs).</summary>
public sealed class JsonCanonicalizerTests
{
    [Fact]
    public void Rfc8785_section_3_2_2_example_is_reproduced()
    {
        const string input = """
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """;
        const string expected = """{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}""";
        Assert.Equal(expected, Canonical(input));
    }

    [Fact]
    public void Rfc8785_section_3_2_3_members_are_sorted_by_utf16_code_units()
    {
        const string input = """
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """;
        using var doc = JsonDocument.Parse(Canonical(input));
        var values = doc.RootElement.EnumerateObject().Select(p => p.Value.GetString()!).ToArray();
        Assert.Equal(
            ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"],
            values);
    }

    [Theory]
    [InlineData("0000000000000000", "0")]
    [InlineData("8000000000000000", "0")]
    [InlineData("0000000000000001", "5e-324")]
    [InlineData("8000000000000001", "-5e-324")]
    [InlineData("7fefffffffffffff", "1.7976931348623157e+308")]
    [InlineData("ffefffffffffffff", "-1.7976931348623157e+308")]
    [InlineData("4340000000000000", "9007199254740992")]
    [InlineData("c340000000000000", "-9007199254740992")]
    [InlineData("4430000000000000", "295147905179352830000")]
    [InlineData("44b52d02c7e14af5", "9.999999999999997e+22")]
    [InlineData("44b52d02c7e14af6", "1e+23")]
    [InlineData("44b52d02c7e14af7", "1.0000000000000001e+23")]
    [InlineData("444b1ae4d6e2ef4e", "999999999999999700000")]
    [InlineData("444b1ae4d6e2ef4f", "999999999999999900000")]
    [InlineData("444b1ae4d6e2ef50", "1e+21")]
    [InlineData("3eb0c6f7a0b5ed8c", "9.999999999999997e-7")]
    [InlineData("3eb0c6f7a0b5ed8d", "0.000001")]
    [InlineData("41b3de4355555553", "333333333.3333332")]
    [InlineData("41b3de4355555554", "333333333.33333325")]
    [InlineData("41b3de4355555555", "333333333.3333333")]
    [InlineData("41b3de4355555556", "333333333.3333334")]
    [InlineData("41b3de4355555557", "333333333.33333343")]
    [InlineData("becbf647612f3696", "-0.0000033333333333333333")]
    [InlineData("43143ff3c1cb0959", "1424953923781206.2")]
    public void Rfc8785_appendix_b_numbers(string ieeeHex, string expected)
    {
        var value = BitConverter.Int64BitsToDouble(long.Parse(ieeeHex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        Assert.Equal(expected, JsonCanonicalizer.FormatNumber(value));
    }

    [Fact]
    public void Numbers_match_v8_json_stringify_on_ten_thousand_samples()
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "TestData", "jcs", "es6-numbers.csv"));
        Assert.True(lines.Length > 9000, "the V8 sample file is missing or truncated");
        var mismatches = new List<string>();
        foreach (var line in lines)
        {
            var comma = line.IndexOf(',', StringComparison.Ordinal);
            var bits = ulong.Parse(line.AsSpan(0, comma), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var expected = line[(comma + 1)..];
            var actual = JsonCanonicalizer.FormatNumber(BitConverter.UInt64BitsToDouble(bits));
            if (actual != expected)
            {
                mismatches.Add($"{line} -> {actual}");
            }
        }

        Assert.Empty(mismatches);
    }

    [Fact]
    public void Numbers_are_parsed_from_their_json_text_and_reformatted()
    {
        Assert.Equal("[1,-1,100,0.5,1e+21,1e-7,123456789012,0]", Canonical("[1.0, -1, 1E2, 5e-1, 1000000000000000000000, 0.0000001, 123456789012, -0.0]"));
    }

    [Fact]
    public void Nested_values_and_whitespace_are_canonical()
    {
        Assert.Equal(
            """{"a":{"b":[{},[],"x",{"c":null,"d":true}]},"z":""}""",
            Canonical(" { \"z\" : \"\" , \"a\" : { \"b\" : [ { } , [ ] , \"x\" , { \"d\" : true , \"c\" : null } ] } } "));
    }

    [Fact]
    public void Strings_escape_only_quotes_backslash_and_controls()
    {
        Assert.Equal("\"\\b\\t\\n\\f\\r\\u0000\\u001f/<>&é😀\\\"\\\\\"", Canonical("\"\\b\\t\\n\\f\\r\\u0000\\u001F\\/<>&\\u00e9\\ud83d\\ude00\\\"\\\\\""));
    }

    [Theory]
    [InlineData("{\"a\":1,\"a\":2}", "Duplicate")]
    [InlineData("[\"\\ud800\"]", "surrogate")]
    [InlineData("[1e400]", "IEEE-754")]
    [InlineData("{\"a\":", null)]
    public void Rejects_json_that_has_no_canonical_form(string input, string? reason)
    {
        var error = Assert.ThrowsAny<JsonException>(() => JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(input)));
        if (reason is not null)
        {
            Assert.Contains(reason, error.Message);
        }
    }

    [Fact]
    public void Canonical_form_is_a_fixed_point()
    {
        var once = JsonCanonicalizer.Canonicalize("{\"b\":[1.50,\"\\u00e9\"],\"a\":{\"y\":2,\"x\":1}}"u8.ToArray());
        Assert.Equal(once, JsonCanonicalizer.Canonicalize(once));
    }

    private static string Canonical(string json) => Encoding.UTF8.GetString(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(json)));
}
