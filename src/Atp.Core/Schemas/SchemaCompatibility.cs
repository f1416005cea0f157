using System.Globalization;
using System.Text.Json;

namespace Atp.Core.Schemas;

/// <summary>
/// Decides whether one JSON Schema accepts every instance another one accepts (the rule set of docs/schemas.md), and
/// from that whether a new version keeps a type's compatibility mode. The check is conservative: a keyword or
/// construct it cannot judge counts as breaking, so "compatible" is a promise and "breaking" may be a false alarm.
/// </summary>
public static class SchemaCompatibility
{
    public const string Backward = "backward";
    public const string Forward = "forward";

    // Keywords with no effect on which instances are valid (2020-12 core, meta-data and content vocabularies; format is
    // asserted by ATP and so is not among them). $defs matters only through $ref, which is judged on its own.
    private static readonly HashSet<string> Annotations = new(StringComparer.Ordinal)
    {
        "$schema", "$id", "$comment", "$defs", "$vocabulary", "title", "description", "default", "examples", "deprecated",
        "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema",
    };

    // Keywords the rules below judge. Any other keyword of the wider schema is judged only by equality (see Judge).
    private static readonly HashSet<string> Supported = new(StringComparer.Ordinal)
    {
        "type", "enum", "const", "required", "properties", "additionalProperties", "items", "prefixItems",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format",
        "minItems", "maxItems",
    };

    // Keywords whose meaning depends on something outside their own value (other keywords, other parts of the
    // document): equal values do not mean equal constraints, so they are never judged by equality alone.
    private static readonly HashSet<string> ContextDependent = new(StringComparer.Ordinal)
    {
        "$ref", "$dynamicRef", "$anchor", "$dynamicAnchor", "patternProperties", "unevaluatedProperties", "unevaluatedItems",
    };

    private static readonly string[] AllTypes = ["array", "boolean", "integer", "null", "number", "object", "string"];

    /// <summary>
    /// The breaking changes of <paramref name="candidate"/> under <paramref name="mode"/> against the earlier versions
    /// (<paramref name="earlier"/>, oldest first, version 1 first); empty when it may be registered.
    /// </summary>
    public static IReadOnlyList<SchemaConflict> Check(CompatibilityMode mode, IReadOnlyList<JsonElement> earlier, JsonElement candidate)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        var conflicts = new List<SchemaConflict>();
        if (mode == CompatibilityMode.None || earlier.Count == 0)
        {
            return conflicts;
        }

        var first = mode.IsTransitive() ? 0 : earlier.Count - 1;
        for (var i = first; i < earlier.Count; i++)
        {
            var version = i + 1;
            if (mode.ChecksBackward())
            {
                conflicts.AddRange(Accepts(earlier[i], candidate).Select(c => new SchemaConflict(version, Backward, c.Location, c.Reason)));
            }

            if (mode.ChecksForward())
            {
                conflicts.AddRange(Accepts(candidate, earlier[i]).Select(c => new SchemaConflict(version, Forward, c.Location, c.Reason)));
            }
        }

        return conflicts;
    }

    /// <summary>
    /// Why <paramref name="wider"/> might refuse an instance <paramref name="narrower"/> accepts; empty when it provably
    /// accepts all of them. Backward compatibility of a new version is <c>Accepts(old, new)</c>, forward is <c>Accepts(new, old)</c>.
    /// </summary>
    public static IReadOnlyList<BreakingChange> Accepts(JsonElement narrower, JsonElement wider)
    {
        var changes = new List<BreakingChange>();
        // A $ref points into its document's $defs: equal $ref values mean equal constraints only when both roots
        // define the same $defs (or neither does).
        var refsComparable = (Member(narrower, "$defs"), Member(wider, "$defs")) switch
        {
            (null, null) => true,
            ({ } a, { } b) => JsonElement.DeepEquals(a, b),
            _ => false,
        };
        new Judge(changes, refsComparable).Node(narrower, wider, "");
        return changes;
    }

    private static JsonElement? Member(JsonElement schema, string name) =>
        schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty(name, out var value) ? value : null;

    private sealed class Judge(List<BreakingChange> changes, bool refsComparable)
    {
        public void Node(JsonElement n, JsonElement w, string pointer)
        {
            if (w.ValueKind == JsonValueKind.True || n.ValueKind == JsonValueKind.False)
            {
                return;
            }

            if (w.ValueKind == JsonValueKind.False)
            {
                Break(pointer, "the schema now refuses every value here");
                return;
            }

            if (w.ValueKind != JsonValueKind.Object || (n.ValueKind != JsonValueKind.Object && n.ValueKind != JsonValueKind.True))
            {
                Break(pointer, "not a schema the checker can judge");
                return;
            }

            if (JsonElement.DeepEquals(n, w) && (refsComparable || !ContainsContextDependent(n)))
            {
                return;
            }

            var nKeywords = Keywords(n);
            var wKeywords = Keywords(w);
            foreach (var (keyword, value) in wKeywords)
            {
                if (Annotations.Contains(keyword) || Supported.Contains(keyword))
                {
                    continue;
                }

                // A keyword only the narrower schema has can be ignored: ignoring a constraint of the narrower side
                // only makes it look wider, which can only add breaking verdicts. On the wider side, a keyword the
                // rules do not judge is accepted only when the narrower side has it with the same value (then it
                // constrains both alike); otherwise it is reported, never silently accepted.
                if (ContextDependent.Contains(keyword) || !nKeywords.TryGetValue(keyword, out var same) || !JsonElement.DeepEquals(same, value))
                {
                    Break(Pointer(pointer, keyword), $"'{keyword}' {(nKeywords.ContainsKey(keyword) ? "changed" : "added")}: the checker does not judge this keyword, so any change to it counts as breaking");
                }
            }

            var types = EffectiveTypes(nKeywords);
            Types(types, nKeywords, wKeywords, pointer);
            Values(nKeywords, wKeywords, pointer);
            if (types.Contains("number") || types.Contains("integer"))
            {
                Numbers(nKeywords, wKeywords, pointer);
            }

            if (types.Contains("string"))
            {
                Strings(nKeywords, wKeywords, pointer);
            }

            if (types.Contains("object"))
            {
                Objects(nKeywords, wKeywords, pointer);
            }

            if (types.Contains("array"))
            {
                Arrays(nKeywords, wKeywords, pointer);
            }
        }

        private void Types(HashSet<string> types, Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            if (!w.TryGetValue("type", out var wType))
            {
                return;
            }

            var allowed = TypeSet(wType);
            var refused = types.Where(t => !allowed.Contains(t) && !(t == "integer" && allowed.Contains("number"))).Order(StringComparer.Ordinal).ToList();
            if (refused.Count > 0)
            {
                Break(Pointer(pointer, "type"), n.ContainsKey("type") || n.ContainsKey("enum") || n.ContainsKey("const")
                    ? $"type narrowed: {string.Join(", ", refused)} no longer accepted"
                    : $"type added: only {string.Join(", ", allowed.Order(StringComparer.Ordinal))} accepted where any value was");
            }
        }

        private void Values(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            var wValues = AllowedValues(w);
            if (wValues is null)
            {
                return;
            }

            var keyword = w.ContainsKey("enum") ? "enum" : "const";
            var nValues = AllowedValues(n);
            if (nValues is null)
            {
                Break(Pointer(pointer, keyword), $"'{keyword}' added: only listed values accepted where any value of the type was");
                return;
            }

            var missing = nValues.Where(v => !wValues.Any(a => SameValue(a, v))).Select(v => v.GetRawText()).ToList();
            if (missing.Count > 0)
            {
                Break(Pointer(pointer, keyword), $"'{keyword}' narrowed: {string.Join(", ", missing)} no longer accepted");
            }
        }

        private void Numbers(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            var nMin = Number(n, "minimum");
            var nExMin = Number(n, "exclusiveMinimum");
            var nMax = Number(n, "maximum");
            var nExMax = Number(n, "exclusiveMaximum");

            if (Bound(w, "minimum", pointer) is { } min && !(nMin >= min || nExMin >= min))
            {
                Break(Pointer(pointer, "minimum"), nMin is null && nExMin is null ? $"minimum {Text(min)} added" : $"lower bound raised to minimum {Text(min)}");
            }

            if (Bound(w, "exclusiveMinimum", pointer) is { } exMin && !(nMin > exMin || nExMin >= exMin))
            {
                Break(Pointer(pointer, "exclusiveMinimum"), nMin is null && nExMin is null ? $"exclusiveMinimum {Text(exMin)} added" : $"lower bound raised to exclusiveMinimum {Text(exMin)}");
            }

            if (Bound(w, "maximum", pointer) is { } max && !(nMax <= max || nExMax <= max))
            {
                Break(Pointer(pointer, "maximum"), nMax is null && nExMax is null ? $"maximum {Text(max)} added" : $"upper bound lowered to maximum {Text(max)}");
            }

            if (Bound(w, "exclusiveMaximum", pointer) is { } exMax && !(nMax < exMax || nExMax <= exMax))
            {
                Break(Pointer(pointer, "exclusiveMaximum"), nMax is null && nExMax is null ? $"exclusiveMaximum {Text(exMax)} added" : $"upper bound lowered to exclusiveMaximum {Text(exMax)}");
            }
        }

        private void Strings(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            Lengths(n, w, pointer, "minLength", "maxLength", "length");
            foreach (var keyword in (string[])["pattern", "format"])
            {
                // Regular expressions and formats are compared as text: the checker does not decide whether one
                // pattern's language contains another's.
                if (w.TryGetValue(keyword, out var wValue) && !(n.TryGetValue(keyword, out var nValue) && JsonElement.DeepEquals(nValue, wValue)))
                {
                    Break(Pointer(pointer, keyword), n.ContainsKey(keyword) ? $"'{keyword}' changed to {wValue.GetRawText()}" : $"'{keyword}' {wValue.GetRawText()} added");
                }
            }
        }

        private void Arrays(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            Lengths(n, w, pointer, "minItems", "maxItems", "item count");
            var nPrefix = n.TryGetValue("prefixItems", out var np) && np.ValueKind == JsonValueKind.Array ? [.. np.EnumerateArray()] : Array.Empty<JsonElement>();
            var wPrefix = w.TryGetValue("prefixItems", out var wp) && wp.ValueKind == JsonValueKind.Array ? [.. wp.EnumerateArray()] : Array.Empty<JsonElement>();
            var nItems = n.TryGetValue("items", out var ni) ? ni : True;
            var wItems = w.TryGetValue("items", out var wi) ? wi : True;
            var maxItems = Number(n, "maxItems");
            var positions = Math.Max(nPrefix.Length, wPrefix.Length);
            for (var i = 0; i < positions && !(i >= maxItems); i++)
            {
                var nAt = i < nPrefix.Length ? nPrefix[i] : nItems;
                var wAt = i < wPrefix.Length ? wPrefix[i] : wItems;
                Node(nAt, wAt, i < wPrefix.Length ? $"{pointer}/prefixItems/{i}" : $"{pointer}/items");
            }

            if (!(positions >= maxItems))
            {
                Node(nItems, wItems, $"{pointer}/items");
            }
        }

        private void Objects(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer)
        {
            if (w.TryGetValue("required", out var wRequired) && wRequired.ValueKind == JsonValueKind.Array)
            {
                var nRequired = n.TryGetValue("required", out var r) && r.ValueKind == JsonValueKind.Array
                    ? r.EnumerateArray().Select(e => e.GetString()).ToHashSet(StringComparer.Ordinal)
                    : [];
                foreach (var name in wRequired.EnumerateArray().Select(e => e.GetString()).Where(name => !nRequired.Contains(name)))
                {
                    Break(Pointer(pointer, "required"), $"property '{name}' became required");
                }
            }

            // Each property is checked against the schema each side applies to it: its own, else additionalProperties
            // (absent = any value: the open content model). This is where adding or removing a property is judged.
            var nProperties = Properties(n);
            var wProperties = Properties(w);

            // patternProperties (not judged) exempts matching names from additionalProperties: a narrower schema with
            // it is treated as open, which can only make it look wider.
            var nAdditional = n.ContainsKey("patternProperties") ? True : n.TryGetValue("additionalProperties", out var na) ? na : True;
            var wAdditional = w.TryGetValue("additionalProperties", out var wa) ? wa : True;
            foreach (var name in nProperties.Keys.Union(wProperties.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                var nSchema = nProperties.TryGetValue(name, out var ns) ? ns : nAdditional;
                var before = changes.Count;
                if (wProperties.TryGetValue(name, out var ws))
                {
                    Node(nSchema, ws, $"{pointer}/properties/{Escape(name)}");
                    if (changes.Count > before && !nProperties.ContainsKey(name))
                    {
                        changes[before] = changes[before] with { Reason = $"property '{name}' added to an open content model, where it could already hold other values: {changes[before].Reason}" };
                    }
                }
                else
                {
                    Node(nSchema, wAdditional, $"{pointer}/additionalProperties");
                    if (changes.Count > before)
                    {
                        changes[before] = changes[before] with { Reason = $"property '{name}' is no longer declared and additionalProperties refuses it: {changes[before].Reason}" };
                    }
                }
            }

            Node(nAdditional, wAdditional, $"{pointer}/additionalProperties");
        }

        private void Lengths(Dictionary<string, JsonElement> n, Dictionary<string, JsonElement> w, string pointer, string minKeyword, string maxKeyword, string what)
        {
            if (Bound(w, minKeyword, pointer) is { } min && !(min <= (Number(n, minKeyword) ?? 0)))
            {
                Break(Pointer(pointer, minKeyword), $"minimum {what} raised to {Text(min)}");
            }

            if (Bound(w, maxKeyword, pointer) is { } max && !(Number(n, maxKeyword) <= max))
            {
                Break(Pointer(pointer, maxKeyword), n.ContainsKey(maxKeyword) ? $"maximum {what} lowered to {Text(max)}" : $"maximum {what} {Text(max)} added");
            }
        }

        // A bound that is not a finite number cannot be compared: reported rather than ignored.
        private double? Bound(Dictionary<string, JsonElement> w, string keyword, string pointer)
        {
            if (!w.TryGetValue(keyword, out var value))
            {
                return null;
            }

            if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && double.IsFinite(number))
            {
                return number;
            }

            Break(Pointer(pointer, keyword), $"'{keyword}' is not a number the checker can compare");
            return null;
        }

        private static double? Number(Dictionary<string, JsonElement> schema, string keyword) =>
            schema.TryGetValue(keyword, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && double.IsFinite(number) ? number : null;

        private void Break(string pointer, string reason) => changes.Add(new BreakingChange(pointer, reason));

        private bool ContainsContextDependent(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.Object => element.EnumerateObject().Any(m => ContextDependent.Contains(m.Name) || ContainsContextDependent(m.Value)),
            JsonValueKind.Array => element.EnumerateArray().Any(ContainsContextDependent),
            _ => false,
        };
    }

    private static readonly JsonElement True = JsonDocument.Parse("true").RootElement.Clone();

    private static Dictionary<string, JsonElement> Keywords(JsonElement schema)
    {
        var keywords = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (schema.ValueKind == JsonValueKind.Object)
        {
            foreach (var member in schema.EnumerateObject())
            {
                keywords[member.Name] = member.Value;
            }
        }

        return keywords;
    }

    private static Dictionary<string, JsonElement> Properties(Dictionary<string, JsonElement> schema)
    {
        var properties = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (schema.TryGetValue("properties", out var value) && value.ValueKind == JsonValueKind.Object)
        {
            foreach (var member in value.EnumerateObject())
            {
                properties[member.Name] = member.Value;
            }
        }

        return properties;
    }

    // The JSON types an instance valid under the schema can have: its type keyword, narrowed by enum or const.
    private static HashSet<string> EffectiveTypes(Dictionary<string, JsonElement> schema)
    {
        var types = schema.TryGetValue("type", out var type) ? TypeSet(type) : [.. AllTypes];
        if (types.Contains("number"))
        {
            types.Add("integer");
        }

        if (AllowedValues(schema) is { } values)
        {
            // An integral value is typed integer here, so a value list of whole numbers fits an integer-only schema.
            types.IntersectWith(values.Select(TypeOf));
        }

        return types;
    }

    private static HashSet<string> TypeSet(JsonElement type) =>
        type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array => type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!).ToHashSet(StringComparer.Ordinal),
            _ => [.. AllTypes],
        };

    // enum ∩ const, or null when neither is present (any value of the type).
    private static List<JsonElement>? AllowedValues(Dictionary<string, JsonElement> schema)
    {
        List<JsonElement>? values = schema.TryGetValue("enum", out var e) && e.ValueKind == JsonValueKind.Array ? [.. e.EnumerateArray()] : null;
        if (schema.TryGetValue("const", out var c))
        {
            values = values is null || values.Any(v => SameValue(v, c)) ? [c] : [];
        }

        return values;
    }

    private static string TypeOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => value.TryGetDouble(out var d) && double.IsFinite(d) && Math.Floor(d) == d ? "integer" : "number",
    };

    // JSON Schema equality: numbers by value (1 and 1.0 are the same instance), everything else structurally.
    private static bool SameValue(JsonElement a, JsonElement b) =>
        a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number
            ? a.TryGetDouble(out var x) && b.TryGetDouble(out var y) && x == y
            : JsonElement.DeepEquals(a, b);

    private static string Pointer(string parent, string keyword) => $"{parent}/{Escape(keyword)}";

    // RFC 6901 §3.
    private static string Escape(string name) => name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
