using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Atp.Core.Events;
using CsCheck;

namespace Atp.Core.Tests.Events;

/// <summary>
/// The reader checks the usual timestamp, IPv4 address and text by hand before (or instead of) the general rule; on
/// generated inputs around every boundary, the outcome must be the general rule's.
/// </summary>
public sealed class EventReaderShortcutTests
{
    private const string Minimal = """
        {"type":"user.login","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-1"},"action":"user.login"}
        """;

    [Fact]
    public void Timestamps_read_by_hand_are_read_as_the_pattern_and_the_framework_parser_read_them()
    {
        var fastHits = 0;
        Timestamp.Sample(text =>
        {
            var expected = EventReader.TryParseTimestampByPattern(text, out var expectedValue);
            var actual = EventReader.TryParseTimestamp(text, out var actualValue);
            Assert.Equal(expected, actual);
            Assert.Equal(expectedValue.UtcTicks, actualValue.UtcTicks);
            Assert.Equal(expectedValue.Offset, actualValue.Offset);
            if (EventReader.TryParseUsualTimestamp(text, out _))
            {
                Interlocked.Increment(ref fastHits);
            }
        }, iter: 50_000);

        // The generator must exercise the hand-read path, not only the fallback.
        Assert.True(fastHits > 5_000, $"only {fastHits} timestamps took the hand-read path");
    }

    [Theory]
    [InlineData("2026-11-26T10:15:30.1234567Z")]
    [InlineData("2026-11-26T10:15:30.12345678Z")]
    [InlineData("2026-11-26T10:15:30.123456789+13:59")]
    [InlineData("2024-02-29T23:59:59.9999999-13:59")]
    [InlineData("2026-11-26T10:15:30+14:00")]
    [InlineData("2026-11-26T10:15:30-14:00")]
    [InlineData("2026-11-26T10:15:30+14:01")]
    [InlineData("2026-11-26T10:15:30+13:60")]
    [InlineData("2026-11-26T23:59:60Z")]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("0001-01-01T00:00:00-01:00")]
    [InlineData("9999-12-31T23:59:59-01:00")]
    [InlineData("9999-12-31T23:59:59+01:00")]
    [InlineData("0999-12-31T23:59:59Z")]
    [InlineData("2025-02-29T10:15:30Z")]
    [InlineData("2026-11-26T10:15:30-00:00")]
    [InlineData("2026-11-26t10:15:30Z")]
    [InlineData("2026-11-26T10:15:30z")]
    [InlineData("2026-11-26T10:15:30.Z")]
    [InlineData("2026-11-26T10:15:30Z ")]
    [InlineData("2026-11-26T10:15:30Z\n")]
    [InlineData("２０２６-11-26T10:15:30Z")]
    public void Timestamps_at_the_edges_of_the_hand_read_form_are_read_as_before(string text)
    {
        var expected = EventReader.TryParseTimestampByPattern(text, out var expectedValue);
        Assert.Equal(expected, EventReader.TryParseTimestamp(text, out var actualValue));
        Assert.Equal(expectedValue.UtcTicks, actualValue.UtcTicks);
        Assert.Equal(expectedValue.Offset, actualValue.Offset);
    }

    [Fact]
    public void Context_ips_are_accepted_exactly_when_they_parse_and_ipv4_prints_back_unchanged()
    {
        var part = Gen.Frequency(
            (6, (IGen<string>)Gen.Int[0, 300].Select(i => i.ToString(CultureInfo.InvariantCulture))),
            (1, Gen.OneOf("00", "01", "007", "0255", "1000", "", "0x7f", "a", " 1", "1 ", "-1", "+1", "٣")));
        var ip = Gen.Frequency(
            (6, (IGen<string>)part.Array[4].Select(parts => string.Join('.', parts))),
            (2, part.Array[1, 6].Select(parts => string.Join('.', parts))),
            (1, Gen.OneOf("::1", "2001:db8::1", "::ffff:1.2.3.4", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4/8", "1.2.3.4:80")));
        ip.Sample(text =>
        {
            var expected = IPAddress.TryParse(text, out var address)
                && (address.AddressFamily != AddressFamily.InterNetwork || address.ToString() == text);
            var (draft, errors) = Read(With(Minimal, $"\"context\":{{\"ip\":{JsonSerializer.Serialize(text)}}}"));
            var ipRefused = errors.Any(e => e.Location == "/context/ip");
            Assert.Equal(expected, !ipRefused);
            Assert.Equal(expected, draft is not null);
        }, iter: 20_000);
    }

    [Fact]
    public void Every_control_character_and_only_those_is_refused_in_text()
    {
        for (var c = 0; c <= 0xFFFF; c++)
        {
            if (char.IsSurrogate((char)c))
            {
                continue;
            }

            var (draft, errors) = Read(With(Minimal, $"\"context\":{{\"requestId\":\"a\\u{c:x4}b\"}}"));
            Assert.Equal(char.IsControl((char)c), errors.Any(e => e.Location == "/context/requestId" && e.Detail == "must not contain control characters"));
            Assert.Equal(!char.IsControl((char)c), draft is not null);
        }
    }

    [Theory]
    [InlineData("\"\\u0073uccess\"", "success")]
    [InlineData("\"fail\\u0075re\"", "failure")]
    [InlineData("\"unknown\"", "unknown")]
    public void Outcomes_spelled_with_escapes_are_the_same_outcomes(string json, string outcome)
    {
        var (draft, errors) = Read(With(Minimal, $"\"outcome\":{json}"));

        Assert.Empty(errors);
        Assert.Equal(outcome, draft!.Outcome);
    }

    // Every field from just below to just above its range, in the usual layout or a near variant of it.
    private static readonly Gen<string> Timestamp = Gen.Select(
        Gen.Frequency((1, (IGen<int>)Gen.Int[0, 10_000]), (6, Gen.Int[1990, 2100]), (1, Gen.OneOf(1, 999, 1000, 9998, 9999))),
        Gen.Int[0, 13],
        Gen.Int[0, 32],
        Gen.Int[0, 24],
        Gen.Int[0, 60],
        Gen.Int[0, 60],
        Gen.Int[0, 9].SelectMany(digits => Gen.Long[0, 999_999_999].Select(f => digits == 0 ? "" : "." + f.ToString("D9", CultureInfo.InvariantCulture)[..digits])),
        Gen.Frequency(
            (3, (IGen<string>)Gen.Const("Z")),
            (4, Gen.Select(Gen.OneOf('+', '-'), Gen.Int[0, 15], Gen.Int[0, 60], (sign, h, m) => $"{sign}{h:D2}:{m:D2}")),
            (1, Gen.OneOf("z", "", "+0200", "+2:00", " Z"))),
        Gen.Frequency((12, (IGen<char>)Gen.Const('T')), (1, Gen.OneOf('t', ' ', 'X'))),
        (year, month, day, hour, minute, second, fraction, offset, separator) =>
            $"{year:D4}-{month:D2}-{day:D2}{separator}{hour:D2}:{minute:D2}:{second:D2}{fraction}{offset}");

    private static (EventDraft? Draft, List<EventError> Errors) Read(string json)
    {
        var errors = new List<EventError>();
        var draft = EventReader.Read(JsonSerializer.Deserialize<JsonElement>(json), 0, errors);
        return (draft, errors);
    }

    private static string With(string eventJson, string members) => eventJson.TrimEnd()[..^1] + "," + members + "}";
}
