using System.Text.Json;
using Atp.Core.Schemas;

namespace Atp.Core.Tests.Schemas;

/// <summary>
/// The rule set of docs/schemas.md on a table of schema pairs, each with the verdict expected under BACKWARD (every
/// event valid under the old version is valid under the new), FORWARD (the reverse) and FULL (both). Where a rule is
/// conservative (a change that is in fact compatible but that the checker does not judge), the expected verdict says
/// breaking and the row's note says so.
/// </summary>
public sealed class SchemaCompatibilityTests
{
    private const string ObjA = """{"type":"object","properties":{"a":{"type":"string"}}}""";
    private const string ObjAB = """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}""";
    private const string ClosedA = """{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}""";
    private const string ClosedAB = """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}""";
    private const string DefsString = """{"$defs":{"id":{"type":"string"}},"type":"object","properties":{"x":{"$ref":"#/$defs/id"}}}""";
    private const string DefsInteger = """{"$defs":{"id":{"type":"integer"}},"type":"object","properties":{"x":{"$ref":"#/$defs/id"}}}""";

    // (note, old, new, backward, forward); full is expected exactly when both hold.
    public static TheoryData<string, string, string, bool, bool> Pairs => new()
    {
        { "identical", """{"type":"string"}""", """{"type":"string"}""", true, true },
        { "integer widened to number", """{"type":"integer"}""", """{"type":"number"}""", true, false },
        { "number narrowed to integer", """{"type":"number"}""", """{"type":"integer"}""", false, true },
        { "null added to the types", """{"type":"string"}""", """{"type":["string","null"]}""", true, false },
        { "null removed from the types", """{"type":["string","null"]}""", """{"type":"string"}""", false, true },
        { "type replaced", """{"type":"string"}""", """{"type":"integer"}""", false, false },
        { "second type added", """{"type":"integer"}""", """{"type":["integer","string"]}""", true, false },
        { "enum widened", """{"enum":["a","b"]}""", """{"enum":["a","b","c"]}""", true, false },
        { "enum narrowed", """{"enum":["a","b","c"]}""", """{"enum":["a","b"]}""", false, true },
        { "enum added", """{"type":"string"}""", """{"type":"string","enum":["a"]}""", false, true },
        { "enum removed", """{"type":"string","enum":["a"]}""", """{"type":"string"}""", true, false },
        { "const widened to enum", """{"const":"a"}""", """{"enum":["a","b"]}""", true, false },
        { "integer enum to integer type", """{"enum":[1,2]}""", """{"type":"integer"}""", true, false },
        { "enum numbers compared by value", """{"enum":[1,2]}""", """{"enum":[1.0,2.0]}""", true, true },
        { "required added", ObjA, """{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}""", false, true },
        { "required removed", """{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}""", ObjA, true, false },
        { "open model: property added", ObjA, ObjAB, false, true },
        { "open model: property removed", ObjAB, ObjA, true, false },
        { "open model: unconstrained property added", ObjA, """{"type":"object","properties":{"a":{"type":"string"},"b":{}}}""", true, true },
        { "closed model: property added", ClosedA, ClosedAB, true, false },
        { "closed model: property removed", ClosedAB, ClosedA, false, true },
        { "additionalProperties closed", ObjA, ClosedA, false, true },
        { "additionalProperties opened", ClosedA, ObjA, true, false },
        {
            "partly open: property added with additionalProperties' schema",
            """{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}""",
            """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":{"type":"string"}}""",
            true, true
        },
        {
            "partly open: property added with another type",
            """{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}""",
            """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":{"type":"string"}}""",
            false, false
        },
        {
            "closed model: property type widened",
            """{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}""",
            """{"type":"object","properties":{"a":{"type":"number"}},"additionalProperties":false}""",
            true, false
        },
        { "minimum raised", """{"type":"number","minimum":0}""", """{"type":"number","minimum":10}""", false, true },
        { "minimum lowered", """{"type":"number","minimum":10}""", """{"type":"number","minimum":0}""", true, false },
        { "maximum added", """{"type":"number"}""", """{"type":"number","maximum":100}""", false, true },
        { "maximum removed", """{"type":"number","maximum":100}""", """{"type":"number"}""", true, false },
        { "exclusiveMinimum relaxed to minimum", """{"type":"number","exclusiveMinimum":0}""", """{"type":"number","minimum":0}""", true, false },
        { "exclusiveMaximum tightened to a lower maximum", """{"type":"number","exclusiveMaximum":10}""", """{"type":"number","maximum":5}""", false, true },
        { "numeric bound on a string schema has no effect", """{"type":"string"}""", """{"type":"string","minimum":5}""", true, true },
        { "minLength raised", """{"type":"string","minLength":1}""", """{"type":"string","minLength":3}""", false, true },
        { "maxLength lowered", """{"type":"string","maxLength":100}""", """{"type":"string","maxLength":50}""", false, true },
        { "maxLength raised", """{"type":"string","maxLength":50}""", """{"type":"string","maxLength":100}""", true, false },
        { "pattern added", """{"type":"string"}""", """{"type":"string","pattern":"^[a-z]+$"}""", false, true },
        { "pattern removed", """{"type":"string","pattern":"^[a-z]+$"}""", """{"type":"string"}""", true, false },
        // Conservative: the new pattern's language contains the old one's, but patterns are compared as text.
        { "pattern changed (conservative)", """{"type":"string","pattern":"^[a-z]+$"}""", """{"type":"string","pattern":"^[a-z0-9]+$"}""", false, false },
        { "format added", """{"type":"string"}""", """{"type":"string","format":"uuid"}""", false, true },
        { "format removed", """{"type":"string","format":"uuid"}""", """{"type":"string"}""", true, false },
        { "format changed", """{"type":"string","format":"date-time"}""", """{"type":"string","format":"date"}""", false, false },
        { "items narrowed", """{"type":"array","items":{"type":"number"}}""", """{"type":"array","items":{"type":"integer"}}""", false, true },
        { "items widened", """{"type":"array","items":{"type":"integer"}}""", """{"type":"array","items":{"type":"number"}}""", true, false },
        { "prefixItems position added", """{"type":"array","prefixItems":[{"type":"string"}]}""", """{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}""", false, true },
        { "minItems raised", """{"type":"array","minItems":1}""", """{"type":"array","minItems":2}""", false, true },
        { "maxItems added", """{"type":"array"}""", """{"type":"array","maxItems":10}""", false, true },
        {
            "nested property narrowed",
            """{"type":"object","properties":{"order":{"type":"object","properties":{"total":{"type":"number"}}}}}""",
            """{"type":"object","properties":{"order":{"type":"object","properties":{"total":{"type":"integer"}}}}}""",
            false, true
        },
        {
            "nested required added",
            """{"type":"object","properties":{"order":{"type":"object","properties":{"id":{"type":"string"}}}}}""",
            """{"type":"object","properties":{"order":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}}}""",
            false, true
        },
        { "annotations only changed", """{"type":"string","title":"Old","description":"x"}""", """{"type":"string","title":"New","examples":["a"]}""", true, true },
        { "unjudged keyword added", """{"type":"number"}""", """{"type":"number","multipleOf":2}""", false, true },
        { "unjudged keyword removed", """{"type":"number","multipleOf":2}""", """{"type":"number"}""", true, false },
        { "unjudged keyword kept equal", """{"type":"number","multipleOf":2}""", """{"type":"number","multipleOf":2,"title":"even"}""", true, true },
        { "referenced definition changed", DefsString, DefsInteger, false, false },
        { "references with identical definitions", DefsString, DefsString, true, true },
        { "true to false", "true", "false", false, true },
        { "object type to true", """{"type":"object"}""", "true", true, false },
        { "required on a string schema has no effect", """{"type":"string"}""", """{"type":"string","required":["a"]}""", true, true },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Table_of_schema_pairs_gets_the_expected_verdict_under_BACKWARD_FORWARD_and_FULL(string note, string oldSchema, string newSchema, bool backward, bool forward)
    {
        var earlier = new[] { Parse(oldSchema) };
        var candidate = Parse(newSchema);

        var b = SchemaCompatibility.Check(CompatibilityMode.Backward, earlier, candidate);
        var f = SchemaCompatibility.Check(CompatibilityMode.Forward, earlier, candidate);
        var full = SchemaCompatibility.Check(CompatibilityMode.Full, earlier, candidate);

        Assert.True(backward == (b.Count == 0), $"{note}: BACKWARD expected {(backward ? "compatible" : "breaking")}, got {Describe(b)}");
        Assert.True(forward == (f.Count == 0), $"{note}: FORWARD expected {(forward ? "compatible" : "breaking")}, got {Describe(f)}");
        Assert.True((backward && forward) == (full.Count == 0), $"{note}: FULL expected {(backward && forward ? "compatible" : "breaking")}, got {Describe(full)}");
        Assert.All(b, c => Assert.Equal(SchemaCompatibility.Backward, c.Direction));
        Assert.All(f, c => Assert.Equal(SchemaCompatibility.Forward, c.Direction));
        Assert.Empty(SchemaCompatibility.Check(CompatibilityMode.None, earlier, candidate));
    }

    [Fact]
    public void Table_has_at_least_forty_pairs() => Assert.True(Pairs.Count >= 40, $"{Pairs.Count} pairs");

    [Fact]
    public void Breaking_changes_name_the_pointer_and_the_reason()
    {
        var changes = SchemaCompatibility.Accepts(Parse(ObjA), Parse("""{"type":"object","properties":{"a":{"type":"string","maxLength":5}},"required":["a"]}"""));

        Assert.Contains(changes, c => c.Location == "/required" && c.Reason.Contains("'a' became required", StringComparison.Ordinal));
        Assert.Contains(changes, c => c.Location == "/properties/a/maxLength" && c.Reason.Contains("maximum length 5 added", StringComparison.Ordinal));
    }

    [Fact]
    public void Open_content_model_addition_is_reported_as_such()
    {
        var change = Assert.Single(SchemaCompatibility.Accepts(Parse(ObjA), Parse(ObjAB)));

        Assert.Equal("/properties/b/type", change.Location);
        Assert.Contains("added to an open content model", change.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Transitive_modes_check_every_earlier_version_the_others_only_the_latest()
    {
        // v2 replaced v1's type while the type's mode was NONE; v3 keeps v2.
        JsonElement[] earlier = [Parse("""{"type":"integer"}"""), Parse("""{"type":"string"}""")];
        var candidate = Parse("""{"type":"string","maxLength":10}""");

        Assert.Empty(SchemaCompatibility.Check(CompatibilityMode.Forward, earlier, candidate));
        Assert.All(SchemaCompatibility.Check(CompatibilityMode.ForwardTransitive, earlier, candidate), c => Assert.Equal(1, c.Version));
        Assert.NotEmpty(SchemaCompatibility.Check(CompatibilityMode.ForwardTransitive, earlier, candidate));
        Assert.All(SchemaCompatibility.Check(CompatibilityMode.Backward, earlier, candidate), c => Assert.Equal(2, c.Version));
        Assert.Contains(SchemaCompatibility.Check(CompatibilityMode.BackwardTransitive, earlier, candidate), c => c.Version == 1);
        Assert.Contains(SchemaCompatibility.Check(CompatibilityMode.FullTransitive, earlier, candidate), c => c.Version == 1 && c.Direction == SchemaCompatibility.Forward);
    }

    [Theory]
    [InlineData("BACKWARD", CompatibilityMode.Backward)]
    [InlineData("BACKWARD_TRANSITIVE", CompatibilityMode.BackwardTransitive)]
    [InlineData("FORWARD", CompatibilityMode.Forward)]
    [InlineData("FORWARD_TRANSITIVE", CompatibilityMode.ForwardTransitive)]
    [InlineData("FULL", CompatibilityMode.Full)]
    [InlineData("FULL_TRANSITIVE", CompatibilityMode.FullTransitive)]
    [InlineData("NONE", CompatibilityMode.None)]
    public void Mode_names_round_trip(string name, CompatibilityMode mode)
    {
        Assert.True(CompatibilityModes.TryParse(name, out var parsed));
        Assert.Equal(mode, parsed);
        Assert.Equal(name, mode.Name());
    }

    [Theory]
    [InlineData("backward")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("FULLY")]
    public void Unknown_mode_names_are_refused(string? name) => Assert.False(CompatibilityModes.TryParse(name, out _));

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static string Describe(IReadOnlyList<SchemaConflict> conflicts) =>
        conflicts.Count == 0 ? "compatible" : string.Join("; ", conflicts.Select(c => $"{c.Direction} v{c.Version} {c.Location}: {c.Reason}"));
}
