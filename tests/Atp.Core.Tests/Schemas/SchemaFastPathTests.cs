using System.Text.Json;
using Atp.Core.Schemas;
using CsCheck;
using Json.Schema;

namespace Atp.Core.Tests.Schemas;

/// <summary>
/// The fast path may only ever say "valid" where JsonSchema.Net says valid (it never decides a failure), and it must
/// say so for ordinary valid events, or it buys nothing. Checked differentially against the evaluator on random
/// instances drawn from values near each schema's edges.
/// </summary>
public sealed class SchemaFastPathTests
{
    private static readonly EvaluationOptions Flag = new() { OutputFormat = OutputFormat.Flag, RequireFormatValidation = true };

    // One schema per supported keyword family, and their combinations, each with an instance valid under it.
    public static readonly TheoryData<string, string> Schemas = new()
    {
        { """{"type":"object","additionalProperties":false,"required":["a"],"properties":{"a":{"type":"string","minLength":2,"maxLength":3},"b":{"type":"integer","minimum":1,"maximum":10}}}""", """{"a":"ab","b":10}""" },
        { """{"type":["string","null"],"pattern":"^[a-c]+\\d?$"}""", "\"abc1\"" },
        { """{"enum":[1,"1",true,null,{"x":1},[1,2]]}""", "true" },
        { """{"const":"ab"}""", "\"ab\"" },
        { """{"type":"number","exclusiveMinimum":0.5,"exclusiveMaximum":2}""", "1.5" },
        { """{"type":"integer"}""", "1e1" },
        { """{"type":"array","minItems":1,"maxItems":3,"items":{"type":"object","properties":{"k":{"enum":["p","q"]}},"additionalProperties":{"type":"boolean"}}}""", """[{"k":"p","z":true}]""" },
        { """{"format":"date-time"}""", "\"2026-12-07T06:00:00Z\"" },
        { """{"format":"email"}""", "\"u@example.com\"" },
        { """{"anyOf":[{"type":"string","maxLength":1},{"type":"integer","minimum":5}]}""", "5" },
        { """{"allOf":[{"type":"object","required":["a"]},{"properties":{"a":{"const":1}}}],"minProperties":1,"maxProperties":2}""", """{"a":1.0}""" },
        { """{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"c":{"$ref":"#/$defs/n"}},"additionalProperties":false}},"$ref":"#/$defs/n"}""", """{"v":1,"c":{"c":{"v":2}}}""" },
        { """{"properties":{"a":true,"b":false},"additionalProperties":{"type":"string","minLength":1}}""", """{"a":[],"x":"y"}""" },
        { """{"type":"string","maxLength":2}""", "\"😀😀\"" },
        { """{"title":"t","description":"d","$comment":"c","examples":[1],"default":2,"deprecated":true,"type":"integer","maximum":3}""", "3" },
    };

    [Theory]
    [MemberData(nameof(Schemas))]
    public void The_fast_path_says_valid_only_where_JsonSchema_Net_says_valid(string schemaText, string valid)
    {
        var schema = Build(schemaText);
        var fast = SchemaFastPath.TryCreate(schema);
        Assert.NotNull(fast);
        using (var validDocument = JsonDocument.Parse(valid))
        {
            Assert.True(LibraryValid(schema, validDocument.RootElement));
            Assert.True(fast.IsCertainlyValid(validDocument.RootElement), $"the fast path did not prove {valid} valid");
        }

        Instance.Sample(text =>
        {
            using var document = JsonDocument.Parse(text);
            return !fast.IsCertainlyValid(document.RootElement) || LibraryValid(schema, document.RootElement);
        }, iter: 3000);
    }

    [Theory]
    [InlineData("""{"type":"object","additionalProperties":false,"required":["source"],"properties":{"source":{"enum":["web","api"]},"revision":{"type":"integer","minimum":1},"sessionId":{"type":"string","pattern":"^ses_[0-9a-z]{16}$"},"changes":{"type":"array","items":{"type":"object","required":["field"],"properties":{"field":{"type":"string","maxLength":256}}}}}}""",
        """{"source":"web","revision":3,"sessionId":"ses_0123456789abcdef","changes":[{"field":"title"},{"field":"ü😀"}]}""")]
    [InlineData("""{"type":"integer","minimum":0}""", "1.0")]
    [InlineData("""{"type":"string","maxLength":2}""", "\"😀😀\"")]
    [InlineData("""{"enum":[1,2]}""", "1.0")]
    [InlineData("""{"format":"date-time"}""", "\"2026-12-07T06:00:00Z\"")]
    [InlineData("""{"format":"date-time"}""", "5")]
    public void Ordinary_valid_events_take_the_fast_path(string schemaText, string instance)
    {
        var schema = Build(schemaText);
        using var document = JsonDocument.Parse(instance);
        Assert.True(schema.Evaluate(document.RootElement, Flag).IsValid);
        Assert.True(SchemaFastPath.TryCreate(schema)!.IsCertainlyValid(document.RootElement));
    }

    [Theory]
    [InlineData("""{"type":"integer","maximum":1}""", "1.00000000000000000000000000000001")]
    [InlineData("""{"type":"integer"}""", "1e30")]
    [InlineData("""{"type":"string","minLength":2}""", "\"😀\"")]
    [InlineData("""{"type":"string","pattern":"^\\d$"}""", "\"٣\"")]
    [InlineData("""{"format":"date-time"}""", "\"2026-13-07\"")]
    [InlineData("""{"properties":{"b":false}}""", """{"b":1}""")]
    [InlineData("""{"const":{"x":[1.0,"y"]}}""", """{"x":[1,"y"]}""")]
    [InlineData("""{"enum":[1,2]}""", "1e30")]
    public void Instances_at_the_edges_are_left_to_the_evaluator(string schemaText, string instance)
    {
        using var document = JsonDocument.Parse(instance);
        Assert.False(SchemaFastPath.TryCreate(Build(schemaText))!.IsCertainlyValid(document.RootElement));
    }

    [Theory]
    [InlineData("""{"not":{"type":"string"}}""")]
    [InlineData("""{"oneOf":[{"type":"string"},{"type":"integer"}]}""")]
    [InlineData("""{"type":"object","unevaluatedProperties":false}""")]
    [InlineData("""{"patternProperties":{"^a":{"type":"string"}},"additionalProperties":false}""")]
    [InlineData("""{"if":{"type":"string"},"then":{"minLength":1}}""")]
    [InlineData("""{"type":"array","uniqueItems":true}""")]
    [InlineData("""{"type":"number","multipleOf":0.1}""")]
    [InlineData("""{"type":"array","prefixItems":[{"type":"string"}],"items":false}""")]
    public void Schemas_with_keywords_it_does_not_judge_have_no_fast_path(string schemaText)
    {
        Assert.Null(SchemaFastPath.TryCreate(Build(schemaText)));
        using var document = JsonDocument.Parse(schemaText);
        Assert.False(EventSchema.Compile(document.RootElement, out _)!.HasFastPath);
    }

    // The evaluator throws on a number beyond decimal's range where it compares numbers: that event is refused.
    private static bool LibraryValid(JsonSchema schema, JsonElement instance)
    {
        try
        {
            return schema.Evaluate(instance, Flag).IsValid;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData("""{"properties":{"n":{"enum":[1,2]}}}""")]
    [InlineData("""{"properties":{"n":{"const":1}}}""")]
    public void A_number_beyond_decimal_range_is_a_violation_not_an_exception(string schemaText)
    {
        using var schemaDocument = JsonDocument.Parse(schemaText);
        var schema = EventSchema.Compile(schemaDocument.RootElement, out _)!;
        using var data = JsonDocument.Parse("""{"n":1e30}""");
        var violation = schema.Validate(data.RootElement);
        Assert.NotNull(violation);
        Assert.Contains("beyond the range", violation.Message, StringComparison.Ordinal);
    }

    private static JsonSchema Build(string text) =>
        JsonSchema.Build(JsonDocument.Parse(text).RootElement, new BuildOptions { SchemaRegistry = new SchemaRegistry(), Dialect = Dialect.Draft202012 });

    // JSON texts drawn from values near the schemas' edges: short strings of a few letters, digits, emoji and
    // non-ASCII digits; integers and decimals around the bounds; the member names the schemas use; nesting.
    private static readonly Gen<string> Scalar = Gen.OneOf(
        Gen.OneOf("a", "ab", "abc", "abcd", "c1", "ab٣", "😀", "😀😀", "x", "", "y", "p", "q", "1", "2026-12-07T06:00:00Z", "2026-12-07", "u@example.com", "not an email")
            .Select(s => JsonSerializer.Serialize(s)),
        Gen.OneOf("0", "1", "1.0", "2", "2.0", "0.5", "0.50000000000000000000000000001", "5", "10", "11", "-1", "1e1", "1e30", "3", "1.5", "1.99999999999999999999999999999"),
        Gen.OneOf("true", "false", "null"));

    private static readonly Gen<string> Instance = Gen.Recursive<string>((depth, self) => depth >= 3
        ? Scalar
        : Gen.Frequency(
            (4, Scalar),
            (2, Gen.Select(Gen.OneOf("a", "b", "k", "v", "c", "x", "z"), self).Array[0, 3]
                .Select(members => "{" + string.Join(",", members.DistinctBy(m => m.Item1).Select(m => $"\"{m.Item1}\":{m.Item2}")) + "}")),
            (1, self.Array[0, 4].Select(items => "[" + string.Join(",", items) + "]"))));
}
