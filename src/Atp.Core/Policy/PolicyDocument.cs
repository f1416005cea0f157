using System.Text;
using System.Text.Json;
using Atp.Core.Tenants;

namespace Atp.Core.Policy;

/// <summary>
/// A tenant's policy: the settings that weaken or strengthen what the tenant's data is protected by, changed only
/// through proposals a second person approves (docs/policy.md). Null means the edition's default. Only settings that
/// something enforces are here; classification and holds join when they exist.
/// </summary>
/// <param name="RequireSignedRequests">Refuse requests authenticated only by a bearer API key.</param>
/// <param name="RequireRegisteredTypes">Refuse events whose type has no registered schema.</param>
public sealed record PolicyDocument(bool? RequireSignedRequests, bool? RequireRegisteredTypes)
{
    /// <summary>The tenant's classified data fields, sealed at ingest (docs/classification.md); null: none.</summary>
    public FieldClassification? Classification { get; init; }

    /// <summary>How long entries keep their content; null: for ever. Lives only in the policy versions, not in the tenant's settings.</summary>
    public RetentionPolicy? Retention { get; init; }

    /// <summary>
    /// Whether an erasure waits for a second person's approval (docs/classification.md, "Erasure"); null: no, it runs
    /// at once. Lives only in the policy versions, not in the tenant's settings.
    /// </summary>
    public bool? RequireErasureApproval { get; init; }

    /// <summary>The document the tenant's stored settings amount to (its first version).</summary>
    public static PolicyDocument Of(TenantSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new(settings.RequireSignedRequests, settings.RequireRegisteredTypes);
    }

    /// <summary>The tenant's settings with this document's members written over them.</summary>
    public TenantSettings ApplyTo(TenantSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings with { RequireSignedRequests = RequireSignedRequests, RequireRegisteredTypes = RequireRegisteredTypes };
    }

    /// <summary>The stored form: a JSON object with every member, null included (a missing member never means "unchanged").</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("classification");
            if (Classification is { } classification)
            {
                classification.Write(writer);
            }
            else
            {
                writer.WriteNullValue();
            }

            WriteNullable(writer, "requireErasureApproval", RequireErasureApproval);
            WriteNullable(writer, "requireRegisteredTypes", RequireRegisteredTypes);
            WriteNullable(writer, "requireSignedRequests", RequireSignedRequests);
            if (Retention is { } retention)
            {
                writer.WritePropertyName("retention");
                retention.WriteTo(writer);
            }
            else
            {
                writer.WriteNull("retention");
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Reads the stored form; a member it does not know is ignored (a newer build's field read by an older one).</summary>
    public static PolicyDocument FromJson(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        // Stored documents were validated when proposed; what they classify is kept as stored, never dropped.
        var classification = root.TryGetProperty("classification", out var classified) ? FieldClassification.Read(classified, "classification", []) : null;

        // Documents stored before retention existed have no such member: no retention.
        var retention = root.TryGetProperty("retention", out var stored) && stored.ValueKind == JsonValueKind.Object
            ? RetentionPolicy.Read(stored, "retention", [])
            : null;
        // Documents stored before erasure approval existed have no such member: null, erasures run at once.
        return new(ReadNullable(root, "requireSignedRequests"), ReadNullable(root, "requireRegisteredTypes"))
        {
            Classification = classification,
            Retention = retention,
            RequireErasureApproval = ReadNullable(root, "requireErasureApproval"),
        };
    }

    private static void WriteNullable(Utf8JsonWriter writer, string name, bool? value)
    {
        if (value is { } set)
        {
            writer.WriteBoolean(name, set);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static bool? ReadNullable(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;
}
