using System.Text;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Integrity;
using Json.Schema;

namespace Atp.Core.Schemas;

/// <summary>Why an event's data failed its schema: where in the data (JSON Pointer), which keyword, and the evaluator's words.</summary>
public sealed record SchemaViolation(string InstanceLocation, string Keyword, string Message);

/// <summary>
/// One registered schema version, compiled once by JsonSchema.Net (dialect 2020-12, formats asserted) and then
/// evaluated for every event of its type. Immutable and safe to share between threads.
/// </summary>
public sealed class EventSchema
{
    /// <summary>The largest schema document accepted, in canonical UTF-8 form.</summary>
    public const int MaxSchemaBytes = 64 * 1024;

    /// <summary>How deep a schema document may nest.</summary>
    public const int MaxDepth = 64;

    public const string Dialect202012 = "https://json-schema.org/draft/2020-12/schema";

    // The formats JSON Schema 2020-12 defines (§7.3): anything else would be silently accepted by the evaluator.
    private static readonly HashSet<string> KnownFormats = new(StringComparer.Ordinal)
    {
        "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
        "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer", "relative-json-pointer", "regex",
    };

    // The fast path answers only valid/invalid; the list output is computed only for an event that failed.
    private static readonly EvaluationOptions Flag = new() { OutputFormat = OutputFormat.Flag, RequireFormatValidation = true };
    private static readonly EvaluationOptions List = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };

    private readonly JsonSchema _schema;
    private readonly SchemaFastPath? _fastPath;

    private EventSchema(JsonSchema schema, string canonical)
    {
        _schema = schema;
        _fastPath = SchemaFastPath.TryCreate(schema);
        Canonical = canonical;
    }

    /// <summary>Whether valid events skip JsonSchema.Net's evaluator (every keyword the schema uses has a fast check).</summary>
    public bool HasFastPath => _fastPath is not null;

    /// <summary>The schema's RFC 8785 form: what is stored, compared for idempotent registration, and served.</summary>
    public string Canonical { get; }

    /// <summary>The schema document as JSON (parsed from <see cref="Canonical"/>), for the compatibility check.</summary>
    public JsonElement Document => JsonDocument.Parse(Canonical).RootElement;

    /// <summary>Compiles a stored schema (already checked when it was registered).</summary>
    public static EventSchema FromStored(string canonical)
    {
        using var document = JsonDocument.Parse(canonical, new JsonDocumentOptions { MaxDepth = MaxDepth });
        return Compile(document.RootElement, out var errors) ?? throw new InvalidOperationException($"A stored schema no longer compiles: {string.Join("; ", errors)}");
    }

    /// <summary>
    /// Checks a schema document a tenant wants to register and compiles it; null with the reasons when it is not
    /// acceptable: not a JSON Schema 2020-12 document JsonSchema.Net accepts, too large, a reference outside the
    /// document, or a format 2020-12 does not define.
    /// </summary>
    public static EventSchema? Compile(JsonElement schema, out IReadOnlyList<string> errors)
    {
        var found = new List<string>();
        errors = found;

        // The compiled schema keeps references into its document: it gets a copy of its own, never the caller's.
        schema = schema.Clone();
        if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
        {
            found.Add("schema: must be a JSON Schema (an object, or true or false)");
            return null;
        }

        var output = new LimitedBufferWriter(MaxSchemaBytes);
        try
        {
            JsonCanonicalizer.Write(schema, output);
        }
        catch (JsonException e)
        {
            found.Add($"schema: has no canonical JSON form: {e.Message}");
            return null;
        }
        catch (LimitedBufferWriter.LimitExceededException)
        {
            found.Add($"schema: at most {MaxSchemaBytes / 1024} KiB in canonical UTF-8 form");
            return null;
        }

        if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$schema", out var dialect)
            && !(dialect.ValueKind == JsonValueKind.String && dialect.GetString() is Dialect202012 or Dialect202012 + "#"))
        {
            found.Add($"schema/$schema: only JSON Schema 2020-12 ({Dialect202012}) is supported");
        }

        Walk(schema, schema, "", found);
        if (found.Count > 0)
        {
            return null;
        }

        try
        {
            // A registry per schema: a tenant's $id must not meet another tenant's (or another version's) $id.
            var options = new BuildOptions { SchemaRegistry = new SchemaRegistry(), Dialect = Dialect.Draft202012 };
            var compiled = JsonSchema.Build(schema, options);
            return new EventSchema(compiled, Encoding.UTF8.GetString(output.WrittenMemory.Span));
        }
        catch (JsonSchemaException e)
        {
            found.Add($"schema: {e.Message}");
        }
        catch (ArgumentException e)
        {
            // An invalid regular expression in pattern or patternProperties (RegexParseException).
            found.Add($"schema: {e.Message}");
        }

        return null;
    }

    /// <summary>Evaluates an event's data (an absent data member is evaluated as <c>{}</c>); null when valid.</summary>
    public SchemaViolation? Validate(JsonElement data)
    {
        try
        {
            // Most events are valid: the fast path proves that without the evaluator's allocations; everything it
            // cannot prove, failures included, is decided and reported by JsonSchema.Net.
            if (_fastPath?.IsCertainlyValid(data) == true || _schema.Evaluate(data, Flag).IsValid)
            {
                return null;
            }

            var results = _schema.Evaluate(data, List);
            // The last failing node of the list output is the deepest one: the most precise place to point at.
            foreach (var detail in Enumerable.Reverse(results.Details ?? []))
            {
                if (detail.Errors is { Count: > 0 } detailErrors)
                {
                    var (keyword, message) = detailErrors.First();
                    return new SchemaViolation(detail.InstanceLocation.ToString(), keyword.Length > 0 ? keyword : ApplyingKeyword(detail.EvaluationPath.ToString()), message);
                }
            }

            return new SchemaViolation("", "schema", "the data is not valid under the schema");
        }
        catch (RefResolutionException e)
        {
            return new SchemaViolation("", "$ref", e.Message);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            // JsonSchema.Net compares numbers (enum, const, bounds, multipleOf) as decimals and throws on one beyond
            // decimal's range (e.g. 1e30): a refusal of the event, not a server error.
            return new SchemaViolation("", "number", "a number in the data is beyond the range the schema's numeric keywords can compare exactly (about ±7.9e28)");
        }
    }

    // A false subschema fails without a keyword of its own (e.g. a member refused by "additionalProperties": false):
    // the keyword is the applicator that applied it, the nearest one on the evaluation path.
    private static string ApplyingKeyword(string evaluationPath)
    {
        foreach (var segment in evaluationPath.Split('/').Reverse())
        {
            if (Applicators.Contains(segment))
            {
                return segment;
            }
        }

        return "false";
    }

    private static readonly HashSet<string> Applicators = new(StringComparer.Ordinal)
    {
        "additionalProperties", "unevaluatedProperties", "properties", "patternProperties", "propertyNames", "dependentSchemas",
        "items", "prefixItems", "unevaluatedItems", "contains", "not", "if", "then", "else", "allOf", "anyOf", "oneOf", "$ref",
    };

    // References must stay inside the document (nothing is fetched, no other tenant's schema is reachable) and point
    // at something; formats must be ones 2020-12 defines.
    private static void Walk(JsonElement root, JsonElement node, string pointer, List<string> errors)
    {
        switch (node.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var member in node.EnumerateObject())
                {
                    var at = $"{pointer}/{member.Name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)}";
                    if (member.NameEquals("$ref") && member.Value.ValueKind == JsonValueKind.String && !Resolves(root, member.Value.GetString()!))
                    {
                        errors.Add($"schema{at}: only references to a JSON Pointer inside this schema (\"#/$defs/…\") are supported, and it must exist");
                    }
                    else if (member.NameEquals("$dynamicRef"))
                    {
                        errors.Add($"schema{at}: $dynamicRef is not supported");
                    }
                    else if (member.NameEquals("format") && member.Value.ValueKind == JsonValueKind.String && !KnownFormats.Contains(member.Value.GetString()!))
                    {
                        errors.Add($"schema{at}: unknown format; use one JSON Schema 2020-12 defines ({string.Join(", ", KnownFormats)})");
                    }

                    Walk(root, member.Value, at, errors);
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in node.EnumerateArray())
                {
                    Walk(root, item, $"{pointer}/{i++}", errors);
                }

                break;
        }
    }

    private static bool Resolves(JsonElement root, string reference)
    {
        if (reference == "#")
        {
            return true;
        }

        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            return false;
        }

        var node = root;
        foreach (var raw in reference[2..].Split('/'))
        {
            var token = Uri.UnescapeDataString(raw).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (node.ValueKind == JsonValueKind.Object && node.TryGetProperty(token, out var child))
            {
                node = child;
            }
            else if (node.ValueKind == JsonValueKind.Array && int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) && index < node.GetArrayLength())
            {
                node = node[index];
            }
            else
            {
                return false;
            }
        }

        return true;
    }
}
