using System.Text;
using System.Text.Json;

namespace Atp.Core.Query;

/// <summary>What the read models keep of a leaf (canonical event JSON).</summary>
public sealed record LeafFields(long OccurredAt, string ActorType, string ActorId, string Action, string Outcome, IReadOnlyList<(string Type, string Id)> Targets, string Text)
{
    /// <summary>Reads the indexed fields of a stored leaf; <see cref="Text"/> holds the names and the action, dots as spaces.</summary>
    public static LeafFields Read(byte[] leaf)
    {
        using var document = JsonDocument.Parse(leaf);
        var root = document.RootElement;
        var actor = root.GetProperty("actor");
        var text = new StringBuilder();
        AppendName(text, actor);
        var targets = new List<(string, string)>();
        if (root.TryGetProperty("targets", out var list))
        {
            foreach (var target in list.EnumerateArray())
            {
                targets.Add((target.GetProperty("type").GetString()!, target.GetProperty("id").GetString()!));
                AppendName(text, target);
            }
        }

        var action = root.GetProperty("action").GetString()!;
        text.Append(action.Replace('.', ' '));
        return new LeafFields(
            root.GetProperty("occurredAt").GetDateTimeOffset().UtcTicks,
            actor.GetProperty("type").GetString()!,
            actor.GetProperty("id").GetString()!,
            action,
            root.GetProperty("outcome").GetString()!,
            targets,
            text.ToString());
    }

    private static void AppendName(StringBuilder text, JsonElement party)
    {
        if (party.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            text.Append(name.GetString()).Append(' ');
        }
    }
}
