using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Core.Events;
using Atp.Integrity;

namespace Atp.Core.Tests.Events;

/// <summary>Leaf bytes are RFC 8785 canonical JSON of the stored event; the content hash leaves out the receive time.</summary>
public sealed class LeafWriterTests
{
    private static readonly Guid EventId = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
    private static readonly DateTimeOffset OccurredAt = new(2026, 11, 26, 10, 15, 30, TimeSpan.Zero);
    private static readonly DateTimeOffset ReceivedAt = new DateTimeOffset(2026, 11, 26, 10, 15, 31, TimeSpan.Zero).AddMilliseconds(250);

    private static AuditEvent Small => new(
        EventId, "user.login", OccurredAt, ReceivedAt, new Party("user", "u-1", null), "user.login", [], EventOutcome.Success, null, null);

    [Fact]
    public void Writes_a_small_event_as_canonical_json_with_sorted_keys_and_no_whitespace()
    {
        var leaf = LeafWriter.ToLeaf(Small);

        const string expected =
            """{"action":"user.login","actor":{"id":"u-1","type":"user"},"id":"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b","occurredAt":"2026-11-26T10:15:30Z","outcome":"success","receivedAt":"2026-11-26T10:15:31.25Z","targets":[],"type":"user.login"}""";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), leaf);
    }

    [Fact]
    public void Writes_a_full_event_with_canonical_data_numbers_strings_and_key_order()
    {
        using var data = JsonDocument.Parse("""
            {
              "zeta": 1.50,
              "alpha": [1E2, -0, 0.1, true, null],
              "nested": { "b": "é\u000f", "a": "quote \" and \\ backslash" },
              "€": "euro"
            }
            """);
        var auditEvent = new AuditEvent(
            EventId, "document.updated", OccurredAt, ReceivedAt,
            new Party("user", "u-42", "Ada"), "document.update",
            [new Party("document", "doc-7", "Q3"), new Party("folder", "f-1", null)],
            EventOutcome.Failure, new EventContext("192.0.2.1", "curl/8.5.0", null), data.RootElement);

        var leaf = LeafWriter.ToLeaf(auditEvent);

        const string expected =
            "{\"action\":\"document.update\",\"actor\":{\"id\":\"u-42\",\"name\":\"Ada\",\"type\":\"user\"},"
            + "\"context\":{\"ip\":\"192.0.2.1\",\"userAgent\":\"curl/8.5.0\"},"
            + "\"data\":{\"alpha\":[100,0,0.1,true,null],\"nested\":{\"a\":\"quote \\\" and \\\\ backslash\",\"b\":\"é\\u000f\"},\"zeta\":1.5,\"€\":\"euro\"},"
            + "\"id\":\"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b\",\"occurredAt\":\"2026-11-26T10:15:30Z\",\"outcome\":\"failure\","
            + "\"receivedAt\":\"2026-11-26T10:15:31.25Z\","
            + "\"targets\":[{\"id\":\"doc-7\",\"name\":\"Q3\",\"type\":\"document\"},{\"id\":\"f-1\",\"type\":\"folder\"}],"
            + "\"type\":\"document.updated\"}";
        Assert.Equal(expected, Encoding.UTF8.GetString(leaf));
    }

    [Fact]
    public void Fixed_members_with_quotes_backslashes_and_non_ascii_text_are_written_canonically()
    {
        var auditEvent = new AuditEvent(
            EventId, "app/ünïcode", OccurredAt, ReceivedAt, new Party("user", "id \"quoted\" \\ back", "Zoë 😀"), "doc.update",
            [new Party("document", "d/1", "€ report"), new Party("folder", "f", null)], EventOutcome.Failure,
            new EventContext("2001:db8::1", "Mozilla/5.0 \"x\"", "req-1"), null);

        var leaf = LeafWriter.ToLeaf(auditEvent);

        Assert.Equal(JsonCanonicalizer.Canonicalize(leaf), leaf);
        using var parsed = JsonDocument.Parse(leaf);
        Assert.Equal("id \"quoted\" \\ back", parsed.RootElement.GetProperty("actor").GetProperty("id").GetString());
        Assert.Equal("Zoë 😀", parsed.RootElement.GetProperty("actor").GetProperty("name").GetString());
        Assert.Equal(["ip", "requestId", "userAgent"], parsed.RootElement.GetProperty("context").EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void Canonical_data_from_validation_gives_the_same_leaf_as_the_data_element()
    {
        using var body = JsonDocument.Parse("""{"type":"t","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"u","id":"1"},"action":"a.b","data":{"z":[1.0,2e1],"a":{"é":"\u001f"}}}""");
        var errors = new List<EventError>();
        var draft = EventReader.Read(body.RootElement, 0, errors)!;
        Assert.Empty(errors);
        var fromElement = new AuditEvent(EventId, draft.Type, draft.OccurredAt, ReceivedAt, draft.Actor, draft.Action, draft.Targets, draft.Outcome, draft.Context, draft.Data);
        var fromCanonical = fromElement with { CanonicalData = draft.CanonicalData };

        Assert.False(draft.CanonicalData.IsEmpty);
        Assert.Equal(LeafWriter.ToLeaf(fromElement), LeafWriter.ToLeaf(fromCanonical));
    }

    [Fact]
    public void Leaf_bytes_are_a_fixed_point_of_canonicalization()
    {
        using var data = JsonDocument.Parse("""{ "b" : [ 1 , 2 ] , "a" : { "y" : 2 , "x" : 1 } }""");
        var leaf = LeafWriter.ToLeaf(Small with { Data = data.RootElement, Context = new EventContext(null, "agent", "r-1") });

        Assert.Equal(leaf, JsonCanonicalizer.Canonicalize(leaf));
    }

    [Fact]
    public void Keeps_the_receive_time_in_the_leaf_but_out_of_the_content_hash()
    {
        var first = Small;
        var resent = Small with { ReceivedAt = ReceivedAt.AddMinutes(5) };

        Assert.Equal(LeafWriter.ContentHash(first), LeafWriter.ContentHash(resent));
        Assert.NotEqual(LeafWriter.ToLeaf(first), LeafWriter.ToLeaf(resent));
        using var leaf = JsonDocument.Parse(LeafWriter.ToLeaf(resent));
        Assert.Equal("2026-11-26T10:20:31.25Z", leaf.RootElement.GetProperty("receivedAt").GetString());
    }

    [Fact]
    public void Content_hash_is_sha256_of_the_canonical_leaf_without_its_receive_time()
    {
        using var data = JsonDocument.Parse("""{"k":"v","n":[3,2,1]}""");
        var auditEvent = Small with { Data = data.RootElement, Targets = [new Party("document", "d-1", "D")] };

        var withoutReceivedAt = JsonNode.Parse(LeafWriter.ToLeaf(auditEvent))!.AsObject();
        Assert.True(withoutReceivedAt.Remove("receivedAt"));
        var expected = Hash.Sha256(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(withoutReceivedAt.ToJsonString())));

        Assert.Equal(expected, LeafWriter.ContentHash(auditEvent));
    }

    [Fact]
    public void Content_hash_changes_with_anything_the_client_asserted()
    {
        var original = LeafWriter.ContentHash(Small);
        var variants = new[]
        {
            Small with { Id = Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c") },
            Small with { Type = "user.logout" },
            Small with { OccurredAt = OccurredAt.AddTicks(1) },
            Small with { Actor = new Party("user", "u-2", null) },
            Small with { Action = "user.logout" },
            Small with { Targets = [new Party("document", "d-1", null)] },
            Small with { Outcome = EventOutcome.Failure },
            Small with { Context = new EventContext("192.0.2.1", null, null) },
        };

        var hashes = variants.Select(LeafWriter.ContentHash).ToList();

        Assert.DoesNotContain(original, hashes);
        Assert.Equal(hashes.Count, hashes.Distinct().Count());
    }

    [Theory]
    [InlineData(2026, 11, 26, 12, 15, 30, 0, 120, "2026-11-26T10:15:30Z")]
    [InlineData(2026, 11, 26, 4, 45, 30, 0, -330, "2026-11-26T10:15:30Z")]
    [InlineData(2026, 1, 1, 1, 0, 0, 0, 120, "2025-12-31T23:00:00Z")]
    [InlineData(2026, 11, 26, 10, 15, 30, 120, 0, "2026-11-26T10:15:30.12Z")]
    [InlineData(2026, 11, 26, 10, 15, 30, 1, 0, "2026-11-26T10:15:30.001Z")]
    public void Normalizes_timestamps_to_utc_with_a_z_suffix(int year, int month, int day, int hour, int minute, int second, int millisecond, int offsetMinutes, string expected)
    {
        var occurredAt = new DateTimeOffset(year, month, day, hour, minute, second, millisecond, TimeSpan.FromMinutes(offsetMinutes));
        var receivedAt = occurredAt.ToOffset(TimeSpan.FromHours(9));

        using var leaf = JsonDocument.Parse(LeafWriter.ToLeaf(Small with { OccurredAt = occurredAt, ReceivedAt = receivedAt }));

        Assert.Equal(expected, leaf.RootElement.GetProperty("occurredAt").GetString());
        Assert.Equal(expected, leaf.RootElement.GetProperty("receivedAt").GetString());
        Assert.Equal(expected, LeafWriter.FormatTimestamp(occurredAt));
    }

    [Fact]
    public void Keeps_sub_millisecond_precision_down_to_one_tick()
    {
        var occurredAt = OccurredAt.AddTicks(1_234_567);

        Assert.Equal("2026-11-26T10:15:30.1234567Z", LeafWriter.FormatTimestamp(occurredAt));
    }

    [Fact]
    public void The_same_instant_in_different_offsets_gives_the_same_leaf_and_content_hash()
    {
        var utc = Small;
        var shifted = Small with { OccurredAt = OccurredAt.ToOffset(TimeSpan.FromHours(-7)), ReceivedAt = ReceivedAt.ToOffset(TimeSpan.FromHours(5.5)) };

        Assert.Equal(LeafWriter.ToLeaf(utc), LeafWriter.ToLeaf(shifted));
        Assert.Equal(LeafWriter.ContentHash(utc), LeafWriter.ContentHash(shifted));
    }
}
