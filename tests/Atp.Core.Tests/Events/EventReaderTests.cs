using System.Text;
using System.Text.Json;
using Atp.Core.Events;

namespace Atp.Core.Tests.Events;

/// <summary>The input event shape of API v1: every rule, every error reported with its index and JSON Pointer.</summary>
public sealed class EventReaderTests
{
    private const string Minimal = """
        {"type":"user.login","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-1"},"action":"user.login"}
        """;

    [Fact]
    public void Reads_a_minimal_event_with_defaults_for_every_optional_part()
    {
        var (draft, errors) = Read(Minimal);

        Assert.Empty(errors);
        Assert.NotNull(draft);
        Assert.Null(draft.Id);
        Assert.Equal("user.login", draft.Type);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 10, 15, 30, TimeSpan.Zero), draft.OccurredAt);
        Assert.Equal(new Party("user", "u-1", null), draft.Actor);
        Assert.Equal("user.login", draft.Action);
        Assert.Empty(draft.Targets);
        Assert.Equal(EventOutcome.Unknown, draft.Outcome);
        Assert.Null(draft.Context);
        Assert.Null(draft.Data);
    }

    [Fact]
    public void Reads_a_full_event_into_the_expected_draft()
    {
        const string json = """
            {
              "id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
              "type": "document.updated:v2",
              "occurredAt": "2026-11-26T10:15:30.125+02:00",
              "actor": {"type": "user", "id": "u-42", "name": "Ada Lovelace"},
              "action": "document.update",
              "targets": [
                {"type": "document", "id": "doc-7", "name": "Q3 report"},
                {"type": "folder", "id": "f-1"}
              ],
              "outcome": "failure",
              "context": {"ip": "2001:db8::7", "userAgent": "curl/8.5.0", "requestId": "req-123"},
              "data": {"field": "title", "before": "Draft", "after": "Final", "attempt": 3}
            }
            """;

        var (draft, errors) = Read(json);

        Assert.Empty(errors);
        Assert.NotNull(draft);
        Assert.Equal(Guid.Parse("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"), draft.Id);
        Assert.Equal("document.updated:v2", draft.Type);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 10, 15, 30, 125, TimeSpan.FromHours(2)), draft.OccurredAt);
        Assert.Equal(TimeSpan.FromHours(2), draft.OccurredAt.Offset);
        Assert.Equal(new Party("user", "u-42", "Ada Lovelace"), draft.Actor);
        Assert.Equal("document.update", draft.Action);
        Assert.Equal([new Party("document", "doc-7", "Q3 report"), new Party("folder", "f-1", null)], draft.Targets);
        Assert.Equal(EventOutcome.Failure, draft.Outcome);
        Assert.Equal(new EventContext("2001:db8::7", "curl/8.5.0", "req-123"), draft.Context);
        Assert.NotNull(draft.Data);
        var data = draft.Data.Value;
        Assert.Equal(JsonValueKind.Object, data.ValueKind);
        Assert.Equal("title", data.GetProperty("field").GetString());
        Assert.Equal("Final", data.GetProperty("after").GetString());
        Assert.Equal(3, data.GetProperty("attempt").GetInt32());
    }

    [Fact]
    public void Treats_explicit_nulls_of_optional_members_as_absent()
    {
        var (draft, errors) = Read(With(Minimal, """ "id":null,"targets":null,"outcome":null,"context":null,"data":null """));

        Assert.Empty(errors);
        Assert.NotNull(draft);
        Assert.Null(draft.Id);
        Assert.Empty(draft.Targets);
        Assert.Equal(EventOutcome.Unknown, draft.Outcome);
        Assert.Null(draft.Context);
        Assert.Null(draft.Data);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"user.login\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void Refuses_an_event_that_is_not_an_object(string json)
    {
        var (draft, errors) = Read(json, index: 4);

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal(4, error.Index);
        Assert.Equal("", error.Location);
    }

    [Theory]
    [InlineData("type", "/type")]
    [InlineData("occurredAt", "/occurredAt")]
    [InlineData("actor", "/actor")]
    [InlineData("action", "/action")]
    public void Reports_a_missing_required_member_at_its_pointer(string member, string location)
    {
        using var document = JsonDocument.Parse(Minimal);
        var withoutMember = document.RootElement.EnumerateObject().Where(p => p.Name != member).ToDictionary(p => p.Name, p => p.Value);
        var withNull = document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Name == member ? default(JsonElement?) : p.Value);

        var (missing, missingErrors) = Read(JsonSerializer.Serialize(withoutMember));
        var (nulled, nullErrors) = Read(JsonSerializer.Serialize(withNull));

        Assert.Equal([new EventError(0, location, "is required")], missingErrors);
        Assert.Null(missing);

        // An explicit null is refused at the same place (for actor: "must be an object").
        Assert.Equal(location, Assert.Single(nullErrors).Location);
        Assert.Null(nulled);
    }

    [Fact]
    public void Reports_missing_actor_and_target_fields_at_their_pointers()
    {
        var json = """
            {"type":"user.login","occurredAt":"2026-11-26T10:15:30Z","actor":{"name":"nobody"},"action":"user.login",
             "targets":[{"type":"document","id":"d-1"},{"type":"document","id":"d-2"},{"type":"document"}]}
            """;

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        Assert.Equal(["/actor/type", "/actor/id", "/targets/2/id"], errors.Select(e => e.Location));
        Assert.All(errors, e => Assert.Equal("is required", e.Detail));
    }

    [Fact]
    public void Rejects_unknown_members_with_their_json_pointer()
    {
        var json = """
            {"type":"user.login","occurredAt":"2026-11-26T10:15:30Z","severity":"high",
             "actor":{"type":"user","id":"u-1","email":"a@example.com"},"action":"user.login",
             "targets":[{"type":"document","id":"d-1"},{"type":"document","id":"d-2","owner":"x"}],
             "context":{"ip":"192.0.2.1","geo":"eu"}}
            """;

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        Assert.Equal(["/severity", "/actor/email", "/targets/1/owner", "/context/geo"], errors.Select(e => e.Location));
        Assert.All(errors, e => Assert.StartsWith("unknown member", e.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public void Escapes_unknown_member_names_in_the_pointer_per_rfc_6901()
    {
        // RFC 6901 §3: '~' is written "~0" and '/' is written "~1" inside a reference token.
        var (draft, errors) = Read(With(Minimal, """ "a/b":1,"m~n":2 """));

        Assert.Null(draft);
        Assert.Equal(["/a~1b", "/m~0n"], errors.Select(e => e.Location));
    }

    [Theory]
    [InlineData("document.update")]
    [InlineData("user.mfa.enable")]
    [InlineData("api_key.create")]
    [InlineData("sso-connection.delete")]
    [InlineData("v2.Do")]
    public void Accepts_an_action_of_the_form_resource_verb(string action)
    {
        var (draft, errors) = Read(Minimal.Replace("\"action\":\"user.login\"", $"\"action\":\"{action}\"", StringComparison.Ordinal));

        Assert.Empty(errors);
        Assert.Equal(action, draft!.Action);
    }

    [Theory]
    [InlineData("login")]
    [InlineData("document.")]
    [InlineData(".update")]
    [InlineData("document..update")]
    [InlineData("document update")]
    [InlineData("document/update")]
    [InlineData("dokument.ändern")]
    public void Refuses_an_action_that_is_not_resource_verb(string action)
    {
        var (draft, errors) = Read(Minimal.Replace("\"action\":\"user.login\"", $"\"action\":\"{action}\"", StringComparison.Ordinal));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/action", error.Location);
        Assert.Contains("resource.verb", error.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("user login")]
    [InlineData("-user.login")]
    [InlineData("user.login!")]
    public void Refuses_a_type_with_characters_outside_its_alphabet(string type)
    {
        var (draft, errors) = Read(Minimal.Replace("\"type\":\"user.login\"", $"\"type\":\"{type}\"", StringComparison.Ordinal));

        Assert.Null(draft);
        Assert.Equal("/type", Assert.Single(errors).Location);
    }

    [Theory]
    [InlineData("success")]
    [InlineData("failure")]
    [InlineData("unknown")]
    public void Accepts_each_outcome_of_the_enumeration(string outcome)
    {
        var (draft, errors) = Read(With(Minimal, $"\"outcome\":\"{outcome}\""));

        Assert.Empty(errors);
        Assert.Equal(outcome, draft!.Outcome);
    }

    [Theory]
    [InlineData("\"ok\"")]
    [InlineData("\"SUCCESS\"")]
    [InlineData("\"\"")]
    [InlineData("1")]
    [InlineData("true")]
    public void Refuses_an_outcome_outside_the_enumeration(string outcome)
    {
        var (draft, errors) = Read(With(Minimal, $"\"outcome\":{outcome}"));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/outcome", error.Location);
        Assert.Equal("must be success, failure or unknown", error.Detail);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(EventReader.MaxTargets)]
    public void Accepts_zero_to_ten_targets(int count)
    {
        var (draft, errors) = Read(With(Minimal, $"\"targets\":{Targets(count)}"));

        Assert.Empty(errors);
        Assert.Equal(count, draft!.Targets.Count);
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"d-{i}"), draft.Targets.Select(t => t.Id));
    }

    [Fact]
    public void Refuses_more_than_ten_targets()
    {
        var (draft, errors) = Read(With(Minimal, $"\"targets\":{Targets(EventReader.MaxTargets + 1)}"));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/targets", error.Location);
        Assert.Equal("at most 10 targets", error.Detail);
    }

    [Theory]
    [InlineData("{\"type\":\"document\",\"id\":\"d-1\"}", "/targets")]
    [InlineData("\"d-1\"", "/targets")]
    [InlineData("[\"d-1\"]", "/targets/0")]
    [InlineData("[{\"type\":\"document\",\"id\":\"d-1\"},42]", "/targets/1")]
    public void Refuses_targets_that_are_not_an_array_of_objects(string targets, string location)
    {
        var (draft, errors) = Read(With(Minimal, $"\"targets\":{targets}"));

        Assert.Null(draft);
        Assert.Equal(location, Assert.Single(errors).Location);
    }

    [Theory]
    [InlineData("192.0.2.1")]
    [InlineData("2001:db8::1")]
    [InlineData("::1")]
    [InlineData("::ffff:192.0.2.1")]
    public void Accepts_an_ipv4_or_ipv6_context_ip(string ip)
    {
        var (draft, errors) = Read(With(Minimal, $"\"context\":{{\"ip\":\"{ip}\"}}"));

        Assert.Empty(errors);
        Assert.Equal(new EventContext(ip, null, null), draft!.Context);
    }

    [Theory]
    [InlineData("\"not-an-ip\"")]
    [InlineData("\"256.1.1.1\"")]
    [InlineData("\"2001:db8:::1\"")]
    [InlineData("\"example.com\"")]
    [InlineData("3232235777")]
    public void Refuses_a_context_ip_that_is_not_an_ip_address(string ip)
    {
        var (draft, errors) = Read(With(Minimal, $"\"context\":{{\"ip\":{ip}}}"));

        Assert.Null(draft);
        Assert.Equal("/context/ip", Assert.Single(errors).Location);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("127.1")]
    [InlineData("0x7f.0.0.1")]
    public void Refuses_legacy_shorthand_ipv4_forms_that_are_not_dotted_quads(string ip)
    {
        // IPAddress.TryParse follows inet_aton and accepts "1" as 0.0.0.1; an audit record should hold the address as
        // written in RFC 3986 dotted-decimal (or RFC 4291 / 5952 for IPv6), not a guess.
        var (draft, errors) = Read(With(Minimal, $"\"context\":{{\"ip\":\"{ip}\"}}"));

        Assert.Equal("/context/ip", Assert.Single(errors).Location);
        Assert.Null(draft);
    }

    [Fact]
    public void Refuses_a_context_that_is_not_an_object()
    {
        var (draft, errors) = Read(With(Minimal, "\"context\":\"192.0.2.1\""));

        Assert.Null(draft);
        Assert.Equal("/context", Assert.Single(errors).Location);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[{\"a\":1}]")]
    [InlineData("\"text\"")]
    [InlineData("7")]
    [InlineData("false")]
    public void Refuses_data_that_is_not_an_object(string data)
    {
        var (draft, errors) = Read(With(Minimal, $"\"data\":{data}"));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/data", error.Location);
        Assert.Equal("must be a JSON object", error.Detail);
    }

    [Fact]
    public void Accepts_data_of_exactly_64_KiB()
    {
        var data = DataOfLength(EventReader.MaxDataBytes, 'x');

        var (draft, errors) = Read(With(Minimal, $"\"data\":{data}"));

        Assert.Empty(errors);
        Assert.Equal(EventReader.MaxDataBytes, Encoding.UTF8.GetByteCount(draft!.Data!.Value.GetRawText()));
    }

    [Fact]
    public void Refuses_data_larger_than_64_KiB()
    {
        var data = DataOfLength(EventReader.MaxDataBytes + 1, 'x');

        var (draft, errors) = Read(With(Minimal, $"\"data\":{data}"));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/data", error.Location);
        Assert.Equal("must be at most 64 KiB in canonical UTF-8 form", error.Detail);
    }

    [Fact]
    public void Measures_the_data_limit_in_utf8_bytes_not_characters()
    {
        // 40,000 'é' are 40,008 characters of JSON but 80,008 bytes of UTF-8: well over 64 KiB.
        var data = $"{{\"s\":\"{new string('é', 40_000)}\"}}";
        Assert.True(Encoding.UTF8.GetByteCount(data) > EventReader.MaxDataBytes);

        var (draft, errors) = Read(With(Minimal, $"\"data\":{data}"));

        Assert.Equal("/data", Assert.Single(errors).Location);
        Assert.True(draft is null);
    }

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]
    [InlineData("""{"s":"\ud800"}""")]
    [InlineData("""{"n":1e400}""")]
    public void Refuses_data_that_has_no_canonical_json_form(string data)
    {
        // The leaf is RFC 8785 JSON, which needs I-JSON (RFC 7493): unique names, no lone surrogates, numbers that
        // fit a double. Data that passes validation must be writable as a leaf.
        var (draft, errors) = Read(With(Minimal, $"\"data\":{data}"));

        Assert.StartsWith("/data", Assert.Single(errors).Location, StringComparison.Ordinal);
        Assert.Null(draft);
    }

    [Theory]
    [InlineData("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    [InlineData("0193A1B2-7C3D-7E4F-8A9B-0C1D2E3F4A5B")]
    [InlineData("6ba7b810-9dad-11d1-80b4-00c04fd430c8")]
    public void Accepts_a_uuid_id(string id)
    {
        var (draft, errors) = Read(With(Minimal, $"\"id\":\"{id}\""));

        Assert.Empty(errors);
        Assert.Equal(Guid.Parse(id), draft!.Id);
    }

    [Theory]
    [InlineData("\"42\"")]
    [InlineData("\"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5\"")]
    [InlineData("\"0193a1b27c3d7e4f8a9b0c1d2e3f4a5b\"")]
    [InlineData("\"{0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b}\"")]
    [InlineData("\"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5g\"")]
    [InlineData("\"00000000-0000-0000-0000-000000000000\"")]
    [InlineData("42")]
    [InlineData("{}")]
    public void Refuses_an_id_that_is_not_a_uuid_string(string id)
    {
        var (draft, errors) = Read(With(Minimal, $"\"id\":{id}"));

        Assert.Null(draft);
        Assert.Equal("/id", Assert.Single(errors).Location);
    }

    [Theory]
    [InlineData("2026-11-26T10:15:30Z", 2026, 11, 26, 10, 15, 30, 0, 0)]
    [InlineData("2026-11-26T10:15:30.5Z", 2026, 11, 26, 10, 15, 30, 500, 0)]
    [InlineData("2026-11-26T10:15:30.123+02:00", 2026, 11, 26, 10, 15, 30, 123, 120)]
    [InlineData("2026-11-26T10:15:30-05:30", 2026, 11, 26, 10, 15, 30, 0, -330)]
    [InlineData("2024-02-29T23:59:59+00:00", 2024, 2, 29, 23, 59, 59, 0, 0)]
    [InlineData("2026-11-26t10:15:30z", 2026, 11, 26, 10, 15, 30, 0, 0)]
    public void Accepts_an_rfc_3339_occurred_at_with_offset(string text, int year, int month, int day, int hour, int minute, int second, int millisecond, int offsetMinutes)
    {
        var (draft, errors) = Read(Minimal.Replace("2026-11-26T10:15:30Z", text, StringComparison.Ordinal));

        Assert.Empty(errors);
        var expected = new DateTimeOffset(year, month, day, hour, minute, second, millisecond, TimeSpan.FromMinutes(offsetMinutes));
        Assert.Equal(expected, draft!.OccurredAt);
        Assert.Equal(expected.Offset, draft.OccurredAt.Offset);
    }

    [Theory]
    [InlineData("\"2026-11-26T10:15:30\"")]
    [InlineData("\"2026-11-26 10:15:30Z\"")]
    [InlineData("\"2026-11-26\"")]
    [InlineData("\"2026-11-26T10:15Z\"")]
    [InlineData("\"2026-11-26T10:15:30+0200\"")]
    [InlineData("\"2026-11-26T10:15:30 +02:00\"")]
    [InlineData("\"2026-02-30T10:15:30Z\"")]
    [InlineData("\"2026-13-01T10:15:30Z\"")]
    [InlineData("\"2026-11-26T24:15:30Z\"")]
    [InlineData("\"26.11.2026 10:15:30\"")]
    [InlineData("\"Thu, 26 Nov 2026 10:15:30 GMT\"")]
    [InlineData("\"yesterday\"")]
    public void Refuses_an_occurred_at_that_is_not_rfc_3339_with_offset(string occurredAt)
    {
        var (draft, errors) = Read(Minimal.Replace("\"2026-11-26T10:15:30Z\"", occurredAt, StringComparison.Ordinal));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/occurredAt", error.Location);
        Assert.Contains("RFC 3339", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_an_occurred_at_that_is_not_a_string()
    {
        var (draft, errors) = Read(Minimal.Replace("\"2026-11-26T10:15:30Z\"", "1764152130", StringComparison.Ordinal));

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/occurredAt", error.Location);
        Assert.Equal("must be a string", error.Detail);
    }

    [Theory]
    [InlineData("actor", "name", "/actor/name", "\\u0000")]
    [InlineData("actor", "id", "/actor/id", "\\n")]
    [InlineData("actor", "type", "/actor/type", "\\t")]
    [InlineData("context", "userAgent", "/context/userAgent", "\\u001b[31m")]
    [InlineData("context", "requestId", "/context/requestId", "\\u007f")]
    [InlineData("context", "userAgent", "/context/userAgent", "\\u0085")]
    public void Refuses_control_characters_in_text(string parent, string member, string location, string control)
    {
        var value = $"\"ab{control}cd\"";
        var json = parent == "actor"
            ? Minimal.Replace("{\"type\":\"user\",\"id\":\"u-1\"}", member switch
            {
                "name" => $"{{\"type\":\"user\",\"id\":\"u-1\",\"name\":{value}}}",
                "id" => $"{{\"type\":\"user\",\"id\":{value}}}",
                _ => $"{{\"type\":{value},\"id\":\"u-1\"}}",
            }, StringComparison.Ordinal)
            : With(Minimal, $"\"context\":{{\"{member}\":{value}}}");

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal(location, error.Location);
        Assert.Equal("must not contain control characters", error.Detail);
    }

    [Fact]
    public void Refuses_control_characters_in_type_and_action()
    {
        var json = """
            {"type":"user.login\u0000","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-1"},"action":"user.login\r"}
            """;

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        Assert.Equal(["/type", "/action"], errors.Select(e => e.Location));
        Assert.All(errors, e => Assert.Equal("must not contain control characters", e.Detail));
    }

    [Fact]
    public void Refuses_an_unpaired_surrogate_in_text()
    {
        var json = Minimal.Replace("\"id\":\"u-1\"", "\"id\":\"u\\ud800\"", StringComparison.Ordinal);

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        var error = Assert.Single(errors);
        Assert.Equal("/actor/id", error.Location);
        Assert.Equal("contains an unpaired surrogate", error.Detail);
    }

    [Theory]
    [InlineData("type", 128)]
    [InlineData("action", 128)]
    public void Limits_the_length_of_type_and_action(string member, int max)
    {
        var longest = "a." + new string('b', max - 2);
        var tooLong = longest + "b";

        var (accepted, noErrors) = Read(Minimal.Replace($"\"{member}\":\"user.login\"", $"\"{member}\":\"{longest}\"", StringComparison.Ordinal));
        var (refused, errors) = Read(Minimal.Replace($"\"{member}\":\"user.login\"", $"\"{member}\":\"{tooLong}\"", StringComparison.Ordinal));

        Assert.Empty(noErrors);
        Assert.NotNull(accepted);
        Assert.Null(refused);
        var error = Assert.Single(errors);
        Assert.Equal("/" + member, error.Location);
        Assert.Equal($"must be 1 to {max} characters", error.Detail);
    }

    [Fact]
    public void Refuses_empty_and_overlong_party_fields_and_non_string_text()
    {
        var json = $$$"""
            {"type":"user.login","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"","id":"{{{new string('u', EventReader.MaxTextLength + 1)}}}","name":7},
             "action":"user.login","context":{"userAgent":"{{{new string('m', EventReader.MaxUserAgentLength + 1)}}}"}}
            """;

        var (draft, errors) = Read(json);

        Assert.Null(draft);
        Assert.Equal(
            [
                new EventError(0, "/actor/type", "must be 1 to 256 characters"),
                new EventError(0, "/actor/id", "must be 1 to 256 characters"),
                new EventError(0, "/actor/name", "must be a string"),
                new EventError(0, "/context/userAgent", "must be 1 to 1024 characters"),
            ],
            errors);
    }

    [Fact]
    public void Reports_every_error_of_an_event_at_once_with_its_index()
    {
        var json = $$"""
            {"id":"nope","occurredAt":"2026-11-26","actor":{"type":"user"},"action":"login","targets":{{Targets(11)}},
             "outcome":"maybe","context":{"ip":"localhost","geo":"eu"},"data":[1],"extra":true}
            """;

        var (draft, errors) = Read(json, index: 7);

        Assert.Null(draft);
        Assert.All(errors, e => Assert.Equal(7, e.Index));
        Assert.Equal(
            ["/extra", "/id", "/type", "/occurredAt", "/actor/id", "/action", "/targets", "/outcome", "/context/geo", "/context/ip", "/data"],
            errors.Select(e => e.Location));
    }

    [Fact]
    public void Reports_errors_of_several_events_with_each_event_index_and_still_reads_the_valid_ones()
    {
        var errors = new List<EventError>();
        var events = new[]
        {
            Minimal,
            With(Minimal, "\"outcome\":\"maybe\""),
            Minimal.Replace("\"action\":\"user.login\"", "\"action\":\"login\"", StringComparison.Ordinal),
            With(Minimal, "\"targets\":[]"),
        };

        var drafts = events.Select((json, i) => EventReader.Read(Parse(json), i, errors)).ToArray();

        Assert.NotNull(drafts[0]);
        Assert.Null(drafts[1]);
        Assert.Null(drafts[2]);

        // Errors of earlier events in the shared list do not make a later valid event fail.
        Assert.NotNull(drafts[3]);
        Assert.Equal([new EventError(1, "/outcome", "must be success, failure or unknown"), new EventError(2, "/action", "must be resource.verb, e.g. document.update")], errors);
    }

    private static (EventDraft? Draft, List<EventError> Errors) Read(string json, int index = 0)
    {
        var errors = new List<EventError>();
        var draft = EventReader.Read(Parse(json), index, errors);
        return (draft, errors);
    }

    // The element owns its own copy of the document, so a draft's Data stays readable after parsing.
    private static JsonElement Parse(string json) => JsonSerializer.Deserialize<JsonElement>(json);

    // Adds members to the end of an event object.
    private static string With(string eventJson, string members)
    {
        var trimmed = eventJson.TrimEnd();
        return trimmed[..^1] + "," + members.Trim() + "}";
    }

    private static string Targets(int count) =>
        "[" + string.Join(',', Enumerable.Range(0, count).Select(i => $"{{\"type\":\"document\",\"id\":\"d-{i}\"}}")) + "]";

    // A data object whose JSON text is exactly `length` characters.
    private static string DataOfLength(int length, char filler)
    {
        const string shell = "{\"s\":\"\"}";
        return "{\"s\":\"" + new string(filler, length - shell.Length) + "\"}";
    }
}
