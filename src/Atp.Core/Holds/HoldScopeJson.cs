using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atp.Core.Holds;

/// <summary>
/// How the engines store a <see cref="HoldScope"/>: one JSON text, every member written (null when it does not narrow),
/// so both engines keep the same bytes and a later member can be added without a schema change.
/// </summary>
public static class HoldScopeJson
{
    public static string ToJson(HoldScope scope)
    {
        ArgumentNullException.ThrowIfNull(scope);
        return JsonSerializer.Serialize(scope, HoldScopeJsonContext.Default.HoldScope);
    }

    public static HoldScope FromJson(string json) =>
        JsonSerializer.Deserialize(json, HoldScopeJsonContext.Default.HoldScope) ?? throw new JsonException("A stored hold scope is JSON null.");
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(HoldScope))]
internal sealed partial class HoldScopeJsonContext : JsonSerializerContext;
