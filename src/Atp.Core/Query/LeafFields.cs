using System.Text;
using System.Text.Json;

namespace Atp.Core.Query;

/// <summary>What the read models keep of a leaf (canonical event JSON).</summary>
public sealed record LeafFields(long OccurredAt, string ActorType, string ActorId, string Action, string Outcome, IReadOnlyList<(string Type, string Id)> Targets, string Text)
{
    /// <summary>Reads the indexed fields of a stored leaf; <see cref="Text"/> holds the names and the action, dots as spaces.</summary>
    /// <remarks>
    /// One forward pass of <see cref="Utf8JsonReader"/> that skips everything it does not index (context, data):
    /// the projector runs this once per event, and a DOM of the whole leaf cost several times more.
    /// </remarks>
    public static LeafFields Read(ReadOnlySpan<byte> leaf)
    {
        var reader = new Utf8JsonReader(leaf);
        Expect(ref reader, JsonTokenType.StartObject);
        string? action = null, outcome = null;
        Party? actor = null;
        long? occurredAt = null;
        var targets = new List<Party>(2);
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("action"u8))
            {
                action = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("actor"u8))
            {
                actor = ReadParty(ref reader);
            }
            else if (reader.ValueTextEquals("occurredAt"u8))
            {
                Expect(ref reader, JsonTokenType.String);
                occurredAt = reader.GetDateTimeOffset().UtcTicks;
            }
            else if (reader.ValueTextEquals("outcome"u8))
            {
                outcome = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("targets"u8))
            {
                Expect(ref reader, JsonTokenType.StartArray);
                while (Next(ref reader) == JsonTokenType.StartObject)
                {
                    targets.Add(ReadPartyBody(ref reader));
                }
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }

        if (action is null || outcome is null || actor is null || occurredAt is null)
        {
            throw new JsonException("The leaf lacks one of action, actor, occurredAt, outcome.");
        }

        var text = new StringBuilder(64);
        AppendName(text, actor);
        var pairs = new (string Type, string Id)[targets.Count];
        for (var i = 0; i < targets.Count; i++)
        {
            pairs[i] = (targets[i].Type, targets[i].Id);
            AppendName(text, targets[i]);
        }

        text.Append(action).Replace('.', ' ', text.Length - action.Length, action.Length);
        return new LeafFields(occurredAt.Value, actor.Type, actor.Id, action, outcome, pairs, text.ToString());
    }

    private static void AppendName(StringBuilder text, Party party)
    {
        // A sealed name is ciphertext: every one would add words found in no other event (bloating the full-text
        // index and costing ingest), and no search could ever match them.
        if (party.Name is { } name && !Classification.FieldToken.IsToken(name))
        {
            text.Append(name).Append(' ');
        }
    }

    private static Party ReadParty(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject);
        return ReadPartyBody(ref reader);
    }

    // The reader stands on the party's StartObject; returns on its EndObject.
    private static Party ReadPartyBody(ref Utf8JsonReader reader)
    {
        string? id = null, type = null, name = null;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                id = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("type"u8))
            {
                type = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("name"u8))
            {
                // A name that is not a string (null) is not indexed, as before.
                name = Next(ref reader) == JsonTokenType.String ? reader.GetString() : null;
                reader.Skip();
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }

        return new Party(id ?? throw new JsonException("A party of the leaf has no id."), type ?? throw new JsonException("A party of the leaf has no type."), name);
    }

    private static string ReadString(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.String);
        return reader.GetString()!;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (Next(ref reader) != type)
        {
            throw new JsonException($"Unexpected {reader.TokenType} in the leaf where {type} belongs.");
        }
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader) =>
        reader.Read() ? reader.TokenType : throw new JsonException("The leaf ends early.");

    private sealed record Party(string Id, string Type, string? Name);
}
