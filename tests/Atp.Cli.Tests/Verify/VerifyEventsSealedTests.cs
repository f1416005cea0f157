using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Atp.Core.Classification;
using Atp.Integrity;

namespace Atp.Cli.Tests;

/// <summary>
/// <c>atp verify events</c> on pages read with <c>pii:read</c>: the leaves hold real AES-GCM tokens (sealed as the server
/// seals them), the page shows the clear values and carries the tokens in <c>sealed</c>; the verifier puts the tokens
/// back, so it checks what the log committed to and nothing it cannot check.
/// </summary>
public sealed class VerifyEventsSealedTests : IDisposable
{
    private const int Size = 8;

    private readonly List<(JsonObject Clear, JsonObject Leaf, JsonObject Sealed)> _events;
    private readonly LogFixture _log;

    public VerifyEventsSealedTests()
    {
        var key = new DataKey("acme", "k3yIdOfTheSubject0000A", RandomNumberGenerator.GetBytes(32), newlyWrapped: null);
        _events = [.. Enumerable.Range(0, Size).Select(i => Sealed(key, i))];
        _log = new LogFixture(_events.Select(e => Encoding.UTF8.GetBytes(e.Leaf.ToJsonString())));
    }

    [Fact]
    public async Task A_page_read_with_pii_read_verifies_through_its_sealed_tokens()
    {
        var response = await PageAsync(withPiiRead: true, 1, 4, 6);
        Assert.Contains("Quartermaine-4", response.ToJsonString(), StringComparison.Ordinal);

        var result = await VerifyAsync(response);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal(
            $"verified: 3 events against checkpoint {LogFixture.Origin} size {Size}\n"
            + "9 classified fields were verified as the sealed tokens the log holds (\"sealed\"); the clear values shown in their place were not checked (opening a token needs the tenant's keys)\n",
            result.Output);
    }

    [Fact]
    public async Task The_same_page_without_pii_read_still_verifies()
    {
        var response = await PageAsync(withPiiRead: false, 1, 4, 6);
        Assert.DoesNotContain("Quartermaine", response.ToJsonString(), StringComparison.Ordinal);

        var result = await VerifyAsync(response);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal($"verified: 3 events against checkpoint {LogFixture.Origin} size {Size}\n", result.Output);
    }

    [Fact]
    public async Task An_altered_token_in_sealed_fails()
    {
        var response = await PageAsync(withPiiRead: true, 1, 4, 6);
        var sealedFields = response["items"]![1]!["sealed"]!.AsObject();
        var token = sealedFields["/context/ip"]!.GetValue<string>();
        sealedFields["/context/ip"] = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];

        var result = await VerifyAsync(response);

        Assert.Equal((1, ""), (result.ExitCode, result.Output));
        Assert.StartsWith("FAILED: event at index 4 (item 1): the event hashes to ", result.Error, StringComparison.Ordinal);
        Assert.EndsWith($", but the response names leaf hash {MerkleHasher.HashLeaf(_log.Leaf(4)).ToBase64()}\n", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_moved_to_another_field_fails()
    {
        var response = await PageAsync(withPiiRead: true, 2);
        var sealedFields = response["items"]![0]!["sealed"]!.AsObject();
        var name = sealedFields["/actor/name"]!.GetValue<string>();
        sealedFields["/actor/name"] = sealedFields["/context/ip"]!.GetValue<string>();
        sealedFields["/context/ip"] = name;

        var result = await VerifyAsync(response);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("FAILED: event at index 2 (item 0): the event hashes to ", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_clear_value_beside_intact_tokens_is_not_what_is_verified()
    {
        // Said plainly in docs/cli.md: with no key, the verifier checks the tokens; the clear text shown is the server's word.
        var response = await PageAsync(withPiiRead: true, 3);
        response["items"]![0]!["event"]!["actor"]!["name"] = "Someone Else";

        var result = await VerifyAsync(response);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Contains("the clear values shown in their place were not checked", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_single_event_read_with_pii_read_verifies_and_fails_when_its_token_changes()
    {
        var response = new JsonObject
        {
            ["event"] = Item(5, withPiiRead: true),
            ["proof"] = new JsonObject { ["checkpoint"] = (await _log.SignCheckpointAsync(Size)).ToString(), ["inclusion"] = await InclusionAsync(5) },
        };
        var tampered = response.DeepClone();
        tampered["event"]!["sealed"]!["/actor/name"] = _events[6].Sealed["/actor/name"]!.DeepClone();

        var verified = await VerifyAsync(response);
        var refused = await VerifyAsync(tampered);

        Assert.Equal((0, ""), (verified.ExitCode, verified.Error));
        Assert.StartsWith($"verified: 1 events against checkpoint {LogFixture.Origin} size {Size}\n3 classified fields", verified.Output, StringComparison.Ordinal);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("FAILED: event at index 5: the event hashes to ", refused.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sealed_map_that_adds_a_member_or_holds_clear_text_is_refused()
    {
        var adds = await PageAsync(withPiiRead: true, 0);
        adds["items"]![0]!["sealed"]!["/actor/email"] = _events[0].Sealed["/actor/name"]!.DeepClone();
        var clear = await PageAsync(withPiiRead: true, 0);
        clear["items"]![0]!["sealed"]!["/actor/name"] = "Zoë Quartermaine-0";
        var wholeEvent = await PageAsync(withPiiRead: true, 0);
        wholeEvent["items"]![0]!["sealed"]![""] = _events[0].Sealed["/actor/name"]!.DeepClone();

        var results = new[] { await VerifyAsync(adds), await VerifyAsync(clear), await VerifyAsync(wholeEvent) };

        Assert.All(results, r => Assert.Equal((1, ""), (r.ExitCode, r.Output)));
        Assert.Equal("FAILED: event at index 0 (item 0): sealed names \"/actor/email\", which the event does not have\n", results[0].Error);
        Assert.Equal("FAILED: event at index 0 (item 0): sealed[\"/actor/name\"] is not a sealed token (atp:enc:v1:…)\n", results[1].Error);
        Assert.Equal("FAILED: event at index 0 (item 0): sealed names \"\", which is not a JSON pointer to a member of the event\n", results[2].Error);
    }

    public void Dispose() => _log.Dispose();

    // An event as ingested (clear), as its leaf holds it (tokens), and the tokens by pointer, sealed as FieldSealer seals.
    private static (JsonObject Clear, JsonObject Leaf, JsonObject Sealed) Sealed(DataKey key, int i)
    {
        var clear = new JsonObject
        {
            ["id"] = $"0197a0c4-5e1f-7a3b-9c2d-{i:x12}",
            ["type"] = "acme.document.v1",
            ["occurredAt"] = $"2026-11-{1 + i:00}T09:00:00Z",
            ["actor"] = new JsonObject { ["type"] = "user", ["id"] = "u-1", ["name"] = $"Zoë Quartermaine-{i}" },
            ["action"] = "document.read",
            ["context"] = new JsonObject { ["ip"] = $"198.51.100.{i}", ["userAgent"] = $"Mozilla/5.0 ({i})", ["requestId"] = $"req-{i}" },
            ["data"] = new JsonObject { ["n"] = i },
        };
        var leaf = clear.DeepClone().AsObject();
        var tokens = new JsonObject();
        foreach (var (pointer, parent, member) in new[] { ("/actor/name", "actor", "name"), ("/context/ip", "context", "ip"), ("/context/userAgent", "context", "userAgent") })
        {
            var value = clear[parent]![member]!.GetValue<string>();
            var plaintext = new System.Buffers.ArrayBufferWriter<byte>();
            JsonCanonicalizer.WriteString(value, plaintext);
            var token = FieldToken.Seal(key, RandomNumberGenerator.GetBytes(FieldToken.NonceSize), pointer, plaintext.WrittenSpan);
            leaf[parent]![member] = token;
            tokens[pointer] = token;
        }

        return (clear, leaf, tokens);
    }

    /// <summary><c>{index, leafHash, event}</c>, and with <c>pii:read</c> the clear event and <c>sealed</c>, as the server writes them.</summary>
    private JsonObject Item(int index, bool withPiiRead)
    {
        var item = new JsonObject
        {
            ["index"] = index,
            ["leafHash"] = MerkleHasher.HashLeaf(_log.Leaf(index)).ToBase64(),
            ["event"] = withPiiRead ? _events[index].Clear.DeepClone() : JsonNode.Parse(_log.Leaf(index)),
        };
        if (withPiiRead)
        {
            item["sealed"] = _events[index].Sealed.DeepClone();
        }

        return item;
    }

    private async Task<JsonObject> InclusionAsync(int index)
    {
        var hashes = await _log.Proofs.InclusionProofAsync((ulong)index, Size, CancellationToken.None);
        return new JsonObject { ["index"] = index, ["treeSize"] = Size, ["hashes"] = new JsonArray([.. hashes.Select(h => (JsonNode)h.ToBase64())]) };
    }

    private async Task<JsonObject> PageAsync(bool withPiiRead, params int[] indexes)
    {
        var items = new JsonArray();
        foreach (var index in indexes)
        {
            var item = Item(index, withPiiRead);
            item["inclusion"] = await InclusionAsync(index);
            items.Add(item);
        }

        return new JsonObject { ["items"] = items, ["checkpoint"] = (await _log.SignCheckpointAsync(Size)).ToString() };
    }

    private Task<CliResult> VerifyAsync(JsonNode response)
    {
        var file = _log.Write($"response-{Guid.NewGuid():n}.json", Encoding.UTF8.GetBytes(response.ToJsonString()));
        return CliRun.InProcessAsync("verify", "events", file, "--key", _log.VerifierKey);
    }
}
