using System.Text;
using System.Text.Json;
using Atp.Core.Query;

namespace Atp.Core.Tests.Query;

/// <summary>The projector's streaming leaf reader against a DOM reading of the same leaves, written in the test.</summary>
public sealed class LeafFieldsTests
{
    public static TheoryData<string> Leaves => new()
    {
        """{"action":"document.view","actor":{"id":"usr_1","name":"Ada Lovelace","type":"user"},"context":{"ip":"203.0.113.28"},"data":{"a":[1,{"b":null}],"name":"not the actor"},"id":"01a21974-7ae1-7388-8c86-8be6d584507e","occurredAt":"2025-11-02T05:11:59.899Z","outcome":"success","receivedAt":"2026-11-26T20:03:13.7616304Z","targets":[{"id":"doc_1","name":"Q3 plan.md","type":"document"}],"type":"app.document"}""",
        """{"action":"billing.invoice.pay","actor":{"id":"svc","type":"service"},"id":"01a21974-7ae1-7388-8c86-8be6d584507f","occurredAt":"2026-01-01T00:00:00+02:00","outcome":"failure","type":"billing.invoice"}""",
        """{"action":"a","actor":{"id":"u\"1","name":"Zoë \u00e9t\u00e9 \"quoted\"","type":"user"},"occurredAt":"2026-01-01T00:00:00Z","outcome":"success","targets":[{"id":"x","name":null,"type":"t"},{"id":"y","name":"Ünïcödé 日本","type":"t"},{"id":"z","type":"u"}]}""",
        """{"actor":{"type":"user","id":"late-order"},"targets":[],"outcome":"unknown","occurredAt":"2026-03-04T05:06:07.1234567Z","action":"x.y.z"}""",
    };

    [Theory]
    [MemberData(nameof(Leaves))]
    public void Reads_what_a_document_reading_of_the_leaf_finds(string json)
    {
        var fields = LeafFields.Read(Encoding.UTF8.GetBytes(json));

        var expected = Oracle(json);
        Assert.Equal(expected.OccurredAt, fields.OccurredAt);
        Assert.Equal(expected.ActorType, fields.ActorType);
        Assert.Equal(expected.ActorId, fields.ActorId);
        Assert.Equal(expected.Action, fields.Action);
        Assert.Equal(expected.Outcome, fields.Outcome);
        Assert.Equal(expected.Targets, fields.Targets);
        Assert.Equal(expected.Text, fields.Text);
    }

    [Fact]
    public void A_sealed_actor_name_gives_the_text_index_no_words()
    {
        var token = Atp.Core.Classification.FieldToken.Seal(
            new Atp.Core.Classification.DataKey("acme", "k1", System.Security.Cryptography.RandomNumberGenerator.GetBytes(32), null),
            System.Security.Cryptography.RandomNumberGenerator.GetBytes(Atp.Core.Classification.FieldToken.NonceSize),
            "/actor/name",
            "\"Ada Lovelace\""u8);
        var json = $$"""{"action":"document.view","actor":{"id":"usr_1","name":"{{token}}","type":"user"},"occurredAt":"2026-01-01T00:00:00Z","outcome":"success","targets":[{"id":"doc_1","name":"Q3 plan.md","type":"document"}]}""";

        var fields = LeafFields.Read(Encoding.UTF8.GetBytes(json));

        Assert.Equal("Q3 plan.md document view", fields.Text);
        Assert.Equal("usr_1", fields.ActorId);
    }

    [Theory]
    [InlineData("""{"actor":{"id":"u","type":"user"},"occurredAt":"2026-01-01T00:00:00Z","outcome":"success"}""")]
    [InlineData("""{"action":"a","actor":{"id":"u"},"occurredAt":"2026-01-01T00:00:00Z","outcome":"success"}""")]
    [InlineData("""{"action":"a","actor":{"id":"u","type":"user"},"occurredAt":"yesterday","outcome":"success"}""")]
    [InlineData("{\"action\":\"a\",\"actor\":{\"id\":\"u\",\"type\":\"user\"},\"occurredAt\":\"2026-01-01T00:00:00Z\",\"outcome\":\"success\"")]
    public void Refuses_a_leaf_without_the_indexed_fields(string json) =>
        Assert.ThrowsAny<Exception>(() => LeafFields.Read(Encoding.UTF8.GetBytes(json)));

    private static LeafFields Oracle(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var actor = root.GetProperty("actor");
        var names = new List<string>();
        AddName(names, actor);
        var targets = new List<(string, string)>();
        if (root.TryGetProperty("targets", out var list))
        {
            foreach (var target in list.EnumerateArray())
            {
                targets.Add((target.GetProperty("type").GetString()!, target.GetProperty("id").GetString()!));
                AddName(names, target);
            }
        }

        var action = root.GetProperty("action").GetString()!;
        names.Add(action.Replace('.', ' '));
        return new LeafFields(
            root.GetProperty("occurredAt").GetDateTimeOffset().UtcTicks, actor.GetProperty("type").GetString()!, actor.GetProperty("id").GetString()!,
            action, root.GetProperty("outcome").GetString()!, targets, string.Join(' ', names));
    }

    private static void AddName(List<string> names, JsonElement party)
    {
        if (party.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            names.Add(name.GetString()!);
        }
    }
}
