using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using Atp.Core.Events;
using Atp.Integrity;
using CsCheck;

namespace Atp.Core.Tests.Events;

/// <summary>
/// The leaf writer formats timestamps and ids straight into a reused buffer; its bytes must be those of the
/// framework's formatting, and of the general canonicalizer run on the same event as a JSON object.
/// </summary>
public sealed class LeafWriterShortcutTests
{
    private static readonly Gen<DateTimeOffset> Instant = Gen.Select(
        Gen.Frequency(
            (4, (IGen<long>)Gen.Long[DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay]),
            (4, Gen.Long[0, 315_537_897_599].Select(seconds => seconds * TimeSpan.TicksPerSecond)),
            (2, Gen.Long[0, 315_537_897_599_999].Select(milliseconds => milliseconds * TimeSpan.TicksPerMillisecond))),
        Gen.Int[-14 * 60, 14 * 60],
        (ticks, offsetMinutes) =>
        {
            var offset = TimeSpan.FromMinutes(offsetMinutes);
            var utc = new DateTime(ticks, DateTimeKind.Utc);
            return utc.Ticks + offset.Ticks is > 0 and < 3_155_378_975_999_999_999 ? new DateTimeOffset(utc).ToOffset(offset) : new DateTimeOffset(utc);
        });

    [Fact]
    public void Timestamps_written_into_the_leaf_are_the_framework_formatting()
    {
        Instant.Sample(instant =>
        {
            var output = new ArrayBufferWriter<byte>();
            LeafWriter.WriteTimestamp(output, instant);
            Assert.Equal(LeafWriter.FormatTimestamp(instant), Encoding.ASCII.GetString(output.WrittenSpan));
        }, iter: 50_000);
    }

    [Fact]
    public void Leaves_are_the_canonical_form_of_the_event_as_a_json_object()
    {
        var text = Gen.OneOf("a", "Jane Doe", "é\u20ac😀", "quote\"back\\slash", "tab\tnew\nline", "\u007f\u0085", "x/y");
        Gen.Select(Gen.Guid, Instant, Instant, text, text, Gen.Int[0, 3], Gen.Bool).Sample(sample =>
        {
            var (id, occurredAt, receivedAt, name, value, targets, withContext) = sample;
            var auditEvent = new AuditEvent(
                id, "app.audit", occurredAt, receivedAt, new Party("user", value, name), "document.update",
                [.. Enumerable.Range(0, targets).Select(i => new Party("document", $"d-{i}", i % 2 == 0 ? null : value))],
                EventOutcome.Failure, withContext ? new EventContext("192.0.2.1", value, null) : null, null);

            var json = new JsonObject
            {
                ["id"] = id.ToString("D"),
                ["type"] = "app.audit",
                ["occurredAt"] = LeafWriter.FormatTimestamp(occurredAt),
                ["receivedAt"] = LeafWriter.FormatTimestamp(receivedAt),
                ["actor"] = Party(auditEvent.Actor),
                ["action"] = "document.update",
                ["targets"] = new JsonArray([.. auditEvent.Targets.Select(Party)]),
                ["outcome"] = EventOutcome.Failure,
            };
            if (withContext)
            {
                json["context"] = new JsonObject { ["ip"] = "192.0.2.1", ["userAgent"] = value };
            }

            Assert.Equal(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(json.ToJsonString())), LeafWriter.ToLeaf(auditEvent));
        }, iter: 5_000);
    }

    private static JsonObject Party(Party party)
    {
        var json = new JsonObject { ["type"] = party.Type, ["id"] = party.Id };
        if (party.Name is not null)
        {
            json["name"] = party.Name;
        }

        return json;
    }
}
