using System.Text.Json;
using Atp.Core.Schemas;

namespace Atp.Core.Tests.Schemas;

public sealed class EventSchemaTests
{
    private const string Payment = """
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
         "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD"]},
                       "lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"}},"required":["sku"]}},
                       "at":{"type":"string","format":"date-time"}},
         "required":["amount","currency"]}
        """;

    [Fact]
    public void Valid_data_passes()
    {
        var schema = Compile(Payment);

        Assert.Null(schema.Validate(Parse("""{"amount":12.5,"currency":"EUR","lines":[{"sku":"a-1"}],"at":"2026-11-26T10:15:30Z"}""")));
    }

    [Theory]
    [InlineData("""{"amount":-1,"currency":"EUR"}""", "/amount", "minimum")]
    [InlineData("""{"amount":1}""", "", "required")]
    [InlineData("""{"amount":1,"currency":"GBP"}""", "/currency", "enum")]
    [InlineData("""{"amount":1,"currency":"EUR","lines":[{"qty":1}]}""", "/lines/0", "required")]
    [InlineData("""{"amount":1,"currency":"EUR","at":"yesterday"}""", "/at", "format")]
    [InlineData("""{"amount":"1","currency":"EUR"}""", "/amount", "type")]
    public void Invalid_data_names_the_instance_location_and_the_keyword(string data, string location, string keyword)
    {
        var violation = Compile(Payment).Validate(Parse(data));

        Assert.NotNull(violation);
        Assert.Equal(location, violation.InstanceLocation);
        Assert.Equal(keyword, violation.Keyword);
        Assert.False(string.IsNullOrEmpty(violation.Message));
    }

    [Fact]
    public void A_member_refused_by_a_closed_content_model_names_additionalProperties()
    {
        var violation = Compile("""{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}""").Validate(Parse("""{"a":"x","b":1}"""));

        Assert.Equal("/b", violation?.InstanceLocation);
        Assert.Equal("additionalProperties", violation?.Keyword);
    }

    [Theory]
    [InlineData("""{"type":"objectx"}""", "objectx")]
    [InlineData("""{"minimum":"a"}""", "minimum")]
    [InlineData("""{"pattern":"(("}""", "((")]
    [InlineData("""{"$schema":"http://json-schema.org/draft-07/schema#"}""", "2020-12")]
    [InlineData("""{"$ref":"https://example.com/other.json"}""", "inside this schema")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "must exist")]
    [InlineData("""{"format":"nonsense"}""", "unknown format")]
    [InlineData("""{"properties":{"a":{"$dynamicRef":"#x"}}}""", "$dynamicRef")]
    [InlineData("[]", "must be a JSON Schema")]
    [InlineData("\"text\"", "must be a JSON Schema")]
    [InlineData("""{"minimum":1e400}""", "canonical")]
    public void Invalid_schemas_are_refused_with_the_reason(string schema, string reason)
    {
        Assert.Null(EventSchema.Compile(Parse(schema), out var errors));
        Assert.Contains(errors, e => e.Contains(reason, StringComparison.Ordinal));
    }

    [Fact]
    public void Oversized_schema_is_refused()
    {
        var big = "{\"description\":\"" + new string('x', EventSchema.MaxSchemaBytes) + "\"}";

        Assert.Null(EventSchema.Compile(Parse(big), out var errors));
        Assert.Contains(errors, e => e.Contains("64 KiB", StringComparison.Ordinal));
    }

    [Fact]
    public void Canonical_form_ignores_member_order_and_whitespace()
    {
        var a = Compile("""{ "type": "object", "required": ["a"] }""");
        var b = Compile("""{"required":["a"],"type":"object"}""");

        Assert.Equal(a.Canonical, b.Canonical);
        Assert.Equal(a.Canonical, EventSchema.FromStored(a.Canonical).Canonical);
    }

    [Fact]
    public void Same_id_in_two_schemas_does_not_collide()
    {
        var first = Compile("""{"$id":"https://example.com/payment","type":"string"}""");
        var second = Compile("""{"$id":"https://example.com/payment","type":"integer"}""");

        Assert.Null(first.Validate(Parse("\"x\"")));
        Assert.Null(second.Validate(Parse("1")));
        Assert.NotNull(second.Validate(Parse("\"x\"")));
    }

    [Fact]
    public void Local_references_resolve()
    {
        var schema = Compile("""{"$defs":{"id":{"type":"string","minLength":3}},"type":"object","properties":{"x":{"$ref":"#/$defs/id"}}}""");

        Assert.Null(schema.Validate(Parse("""{"x":"abc"}""")));
        Assert.Equal("minLength", schema.Validate(Parse("""{"x":"a"}"""))?.Keyword);
    }

    private static EventSchema Compile(string json) => EventSchema.Compile(Parse(json), out var errors) ?? throw new InvalidOperationException(string.Join("; ", errors));

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
