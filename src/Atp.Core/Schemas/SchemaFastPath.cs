using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Json.Schema.Keywords;

namespace Atp.Core.Schemas;

/// <summary>
/// A quick "certainly valid" check for the common case, built from JsonSchema.Net's own compiled schema (its resolved
/// references, its compiled <c>pattern</c> regexes, its format validators), so it reads the schema exactly as the
/// evaluator does. It answers true only when every keyword it meets says valid; anything else (a failure, a number it
/// cannot compare exactly, a keyword it does not know) is false and the event goes to JsonSchema.Net, which alone
/// decides failures and reports them. So the fast path can make validation cheaper but never changes a verdict.
/// Schemas that use a keyword outside the supported set get no fast path at all.
/// </summary>
internal sealed class SchemaFastPath
{
    private readonly Node _root;

    private SchemaFastPath(Node root) => _root = root;

    /// <summary>A fast path for <paramref name="schema"/>, or null when it uses a keyword the fast path does not judge.</summary>
    public static SchemaFastPath? TryCreate(JsonSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var nodes = new Dictionary<JsonSchemaNode, Node>(ReferenceEqualityComparer.Instance);
        return Compile(schema.Root, nodes) is { } root ? new SchemaFastPath(root) : null;
    }

    /// <summary>True only when <paramref name="instance"/> is certainly valid under the schema.</summary>
    public bool IsCertainlyValid(JsonElement instance) => _root.Holds(instance);

    private static Node? Compile(JsonSchemaNode source, Dictionary<JsonSchemaNode, Node> nodes)
    {
        if (nodes.TryGetValue(source, out var known))
        {
            // A reference cycle (or a subschema shared by several places): the node is filled in once.
            return known;
        }

        var node = new Node();
        nodes.Add(source, node);
        if (source.Source.ValueKind == JsonValueKind.False)
        {
            node.Never = true;
            return node;
        }

        var keywords = source.Keywords;
        foreach (var keyword in keywords)
        {
            if (!Add(node, keyword, keywords, nodes))
            {
                return null;
            }
        }

        return node;
    }

    private static bool Add(Node node, KeywordData keyword, KeywordData[] siblings, Dictionary<JsonSchemaNode, Node> nodes)
    {
        switch (keyword.Handler)
        {
            case TypeKeyword when keyword.Value is SchemaValueType types:
                node.Types = types;
                return true;
            case RequiredKeyword when keyword.Value is string[] required:
                node.Required = [.. required.Select(Encoding.UTF8.GetBytes)];
                return true;
            case PropertiesKeyword:
                {
                    var names = keyword.RawValue.EnumerateObject().ToArray();
                    if (keyword.Subschemas is not { } subschemas || subschemas.Length != names.Length)
                    {
                        return false;
                    }

                    var properties = new (byte[] Name, Node Check)[names.Length];
                    for (var i = 0; i < names.Length; i++)
                    {
                        // The compiled subschemas follow the document's member order; make sure of it rather than assume.
                        if (!JsonElement.DeepEquals(subschemas[i].Source, names[i].Value) || Compile(subschemas[i], nodes) is not { } check)
                        {
                            return false;
                        }

                        properties[i] = (Encoding.UTF8.GetBytes(names[i].Name), check);
                    }

                    node.Properties = properties;
                    return true;
                }

            case AdditionalPropertiesKeyword:
                // Additional means "not named in properties": patternProperties would widen "named" and is not judged here.
                if (siblings.Any(s => s.Handler is PatternPropertiesKeyword) || keyword.Subschemas is not [var additional]
                    || Compile(additional, nodes) is not { } additionalCheck)
                {
                    return false;
                }

                node.Additional = additionalCheck;
                return true;
            case ItemsKeyword:
                if (siblings.Any(s => s.Handler is PrefixItemsKeyword) || keyword.Subschemas is not [var items] || Compile(items, nodes) is not { } itemCheck)
                {
                    return false;
                }

                node.Items = itemCheck;
                return true;
            case RefKeyword:
            case AllOfKeyword:
            case AnyOfKeyword:
                {
                    if (keyword.Subschemas is not { Length: > 0 } subschemas)
                    {
                        return false;
                    }

                    var checks = new Node[subschemas.Length];
                    for (var i = 0; i < subschemas.Length; i++)
                    {
                        if (Compile(subschemas[i], nodes) is not { } check)
                        {
                            return false;
                        }

                        checks[i] = check;
                    }

                    if (keyword.Handler is AnyOfKeyword)
                    {
                        node.AnyOf.Add(checks);
                    }
                    else
                    {
                        node.AllOf.AddRange(checks);
                    }

                    return true;
                }

            case EnumKeyword when keyword.RawValue.ValueKind == JsonValueKind.Array:
                node.Enum = [.. keyword.RawValue.EnumerateArray()];
                return true;
            case ConstKeyword:
                node.Const = keyword.RawValue;
                node.HasConst = true;
                return true;
            case MinLengthKeyword when keyword.Value is long minLength:
                node.MinLength = minLength;
                return true;
            case MaxLengthKeyword when keyword.Value is long maxLength:
                node.MaxLength = maxLength;
                return true;
            case PatternKeyword when keyword.Value is Regex pattern:
                node.Pattern = pattern;
                return true;
            case FormatKeyword or Json.Schema.Keywords.Draft06.FormatKeyword when keyword.RawValue.ValueKind == JsonValueKind.String:
                node.Format = FormatRegistry.Global.Get(keyword.RawValue.GetString()!);
                return true;
            case MinimumKeyword or MaximumKeyword or ExclusiveMinimumKeyword or ExclusiveMaximumKeyword:
                if (!keyword.RawValue.TryGetDecimal(out var bound))
                {
                    return false;
                }

                node.Bounds.Add((keyword.Handler switch
                {
                    MinimumKeyword => Bound.Minimum,
                    MaximumKeyword => Bound.Maximum,
                    ExclusiveMinimumKeyword => Bound.ExclusiveMinimum,
                    _ => Bound.ExclusiveMaximum,
                }, bound));
                return true;
            case MinItemsKeyword when keyword.Value is long minItems:
                node.MinItems = minItems;
                return true;
            case MaxItemsKeyword when keyword.Value is long maxItems:
                node.MaxItems = maxItems;
                return true;
            case MinPropertiesKeyword when keyword.Value is long minProperties:
                node.MinProperties = minProperties;
                return true;
            case MaxPropertiesKeyword when keyword.Value is long maxProperties:
                node.MaxProperties = maxProperties;
                return true;

            // Keywords that never make an instance invalid (annotations, identifiers, definitions reached through $ref).
            case DefsKeyword or SchemaKeyword or IdKeyword or CommentKeyword or TitleKeyword or DescriptionKeyword or DefaultKeyword
                or ExamplesKeyword or DeprecatedKeyword or ReadOnlyKeyword or WriteOnlyKeyword or AnchorKeyword:
                return true;
            default:
                return false;
        }
    }

    private const int MaxExactLiteral = 24;

    private enum Bound
    {
        Minimum,
        Maximum,
        ExclusiveMinimum,
        ExclusiveMaximum,
    }

    private sealed class Node
    {
        public bool Never { get; set; }

        public SchemaValueType? Types { get; set; }

        public byte[][] Required { get; set; } = [];

        public (byte[] Name, Node Check)[]? Properties { get; set; }

        public Node? Additional { get; set; }

        public Node? Items { get; set; }

        public List<Node> AllOf { get; } = [];

        public List<Node[]> AnyOf { get; } = [];

        public JsonElement[]? Enum { get; set; }

        public bool HasConst { get; set; }

        public JsonElement Const { get; set; }

        public long? MinLength { get; set; }

        public long? MaxLength { get; set; }

        public Regex? Pattern { get; set; }

        public Format? Format { get; set; }

        public List<(Bound Kind, decimal Value)> Bounds { get; } = [];

        public long? MinItems { get; set; }

        public long? MaxItems { get; set; }

        public long? MinProperties { get; set; }

        public long? MaxProperties { get; set; }

        public bool Holds(JsonElement instance)
        {
            if (Never || (Types is { } types && !HasType(instance, types)))
            {
                return false;
            }

            // The evaluator compares numbers as decimals (and fails on one beyond decimal's range): such a number, or
            // a container compared as a whole, is left to it.
            if ((Enum is not null || HasConst)
                && (instance.ValueKind is JsonValueKind.Object or JsonValueKind.Array || (instance.ValueKind == JsonValueKind.Number && !IsDecimal(instance))))
            {
                return false;
            }

            if (Enum is { } values && !values.Any(v => JsonElement.DeepEquals(v, instance)))
            {
                return false;
            }

            if (HasConst && !JsonElement.DeepEquals(Const, instance))
            {
                return false;
            }

            // Format validators judge the kinds of instance they apply to themselves (a number passes a string format).
            if (Format is { } format && !format.Validate(instance, out _))
            {
                return false;
            }

            var holds = instance.ValueKind switch
            {
                JsonValueKind.Object => ObjectHolds(instance),
                JsonValueKind.Array => ArrayHolds(instance),
                JsonValueKind.String => StringHolds(instance),
                JsonValueKind.Number => NumberHolds(instance),
                _ => true,
            };
            if (!holds)
            {
                return false;
            }

            foreach (var all in AllOf)
            {
                if (!all.Holds(instance))
                {
                    return false;
                }
            }

            foreach (var any in AnyOf)
            {
                if (!any.Any(n => n.Holds(instance)))
                {
                    return false;
                }
            }

            return true;
        }

        private bool ObjectHolds(JsonElement instance)
        {
            foreach (var name in Required)
            {
                if (!instance.TryGetProperty(name, out _))
                {
                    return false;
                }
            }

            if (Properties is null && Additional is null && MinProperties is null && MaxProperties is null)
            {
                return true;
            }

            var count = 0L;
            foreach (var member in instance.EnumerateObject())
            {
                count++;
                var named = false;
                foreach (var (name, check) in Properties ?? [])
                {
                    if (member.NameEquals(name))
                    {
                        if (!check.Holds(member.Value))
                        {
                            return false;
                        }

                        named = true;
                        break;
                    }
                }

                if (!named && Additional is { } additional && !additional.Holds(member.Value))
                {
                    return false;
                }
            }

            return count >= (MinProperties ?? 0) && count <= (MaxProperties ?? long.MaxValue);
        }

        private bool ArrayHolds(JsonElement instance)
        {
            var length = instance.GetArrayLength();
            if (length < (MinItems ?? 0) || length > (MaxItems ?? long.MaxValue))
            {
                return false;
            }

            if (Items is { } items)
            {
                foreach (var item in instance.EnumerateArray())
                {
                    if (!items.Holds(item))
                    {
                        return false;
                    }
                }
            }

            return true;
        }

        private bool StringHolds(JsonElement instance)
        {
            if (MinLength is null && MaxLength is null && Pattern is null)
            {
                return true;
            }

            var text = instance.GetString()!;
            if (MinLength is not null || MaxLength is not null)
            {
                // JSON Schema counts characters as Unicode code points, not UTF-16 units.
                var length = (long)text.EnumerateRunes().Count();
                if (length < (MinLength ?? 0) || length > (MaxLength ?? long.MaxValue))
                {
                    return false;
                }
            }

            return Pattern is null || Pattern.IsMatch(text);
        }

        private bool NumberHolds(JsonElement instance)
        {
            if (Bounds.Count == 0)
            {
                return true;
            }

            // A number beyond decimal's range or precision is left to the evaluator.
            if (!IsExact(instance) || !instance.TryGetDecimal(out var value))
            {
                return false;
            }

            foreach (var (kind, bound) in Bounds)
            {
                var holds = kind switch
                {
                    Bound.Minimum => value >= bound,
                    Bound.Maximum => value <= bound,
                    Bound.ExclusiveMinimum => value > bound,
                    _ => value < bound,
                };
                if (!holds)
                {
                    return false;
                }
            }

            return true;
        }

        private static bool HasType(JsonElement instance, SchemaValueType types) => instance.ValueKind switch
        {
            JsonValueKind.Object => types.HasFlag(SchemaValueType.Object),
            JsonValueKind.Array => types.HasFlag(SchemaValueType.Array),
            JsonValueKind.String => types.HasFlag(SchemaValueType.String),
            JsonValueKind.True or JsonValueKind.False => types.HasFlag(SchemaValueType.Boolean),
            JsonValueKind.Null => types.HasFlag(SchemaValueType.Null),
            JsonValueKind.Number => types.HasFlag(SchemaValueType.Number) || (types.HasFlag(SchemaValueType.Integer) && IsInteger(instance)),
            _ => false,
        };

        // 1.0 and 1e2 are integers in JSON Schema; a number decimal cannot hold exactly is left to the evaluator.
        private static bool IsInteger(JsonElement number) =>
            number.TryGetInt64(out _) || (IsExact(number) && number.TryGetDecimal(out var value) && value == decimal.Truncate(value));

        private static bool IsDecimal(JsonElement number) => IsExact(number) && number.TryGetDecimal(out _);

        // decimal holds 28 significant digits; a longer literal could be rounded onto (or past) a bound.
        private static bool IsExact(JsonElement number) => System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(number).Length <= MaxExactLiteral;
    }
}
