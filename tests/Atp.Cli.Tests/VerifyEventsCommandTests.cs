using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Integrity;

namespace Atp.Cli.Tests;

/// <summary>
/// <c>atp verify events</c> on verify-on-read responses built the way the server builds them: a real log of JCS event
/// leaves, a checkpoint signed with a real Ed25519 key, proofs from <see cref="ProofBuilder"/>, events re-serialized
/// from their leaves (so non-ASCII text arrives escaped, as System.Text.Json writes it).
/// </summary>
public sealed class VerifyEventsCommandTests : IDisposable
{
    private const int Size = 20;
    private const string Prefix = "FAILED: event at index";

    private readonly LogFixture _log = new(Enumerable.Range(0, Size).Select(i => Encoding.UTF8.GetBytes(Event(i).ToJsonString())));

    [Fact]
    public async Task Search_page_verifies()
    {
        var result = await VerifyAsync(await SearchResponseAsync(17, 4, 9));

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal($"verified: 3 events against checkpoint {LogFixture.Origin} size 20\n", result.Output);
    }

    [Fact]
    public async Task Single_event_verifies()
    {
        var result = await VerifyAsync(await SingleResponseAsync(5), "--origin", LogFixture.Origin);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal($"verified: 1 events against checkpoint {LogFixture.Origin} size 20\n", result.Output);
    }

    [Fact]
    public async Task Empty_page_verifies_the_checkpoint_only()
    {
        var verified = await VerifyAsync(await SearchResponseAsync());
        using var other = NoteSigner.Generate("atp.example.com/test-cell-1");
        var wrongKey = await SearchResponseAsync();
        wrongKey["checkpoint"] = (await _log.SignCheckpointAsync(Size, signer: other)).ToString();
        var refused = await VerifyAsync(wrongKey);

        Assert.Equal(0, verified.ExitCode);
        Assert.Equal($"verified: 0 events against checkpoint {LogFixture.Origin} size 20\n", verified.Output);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("FAILED: checkpoint: the note carries no signature by a trusted key\n", refused.Error);
    }

    [Fact]
    public async Task Unknown_members_are_ignored()
    {
        var response = await SearchResponseAsync(3, 11);
        response["servedBy"] = "westeu-prod-1";
        response["items"]![0]!["receivedBy"] = new JsonObject { ["node"] = 2 };
        response["items"]![1]!["inclusion"]!["algorithm"] = "rfc9162";

        var result = await VerifyAsync(response);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"verified: 2 events against checkpoint {LogFixture.Origin} size 20\n", result.Output);
    }

    [Fact]
    public async Task Reordered_members_other_spacing_and_number_spelling_still_verify()
    {
        // JCS: member order, whitespace, escapes and the spelling of a number are not part of the leaf.
        var response = await SearchResponseAsync(17, 4, 9);
        var item = response["items"]![2]!.AsObject();
        var reversed = new JsonObject(item["event"]!.AsObject().Reverse().Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));
        reversed["actor"] = new JsonObject(reversed["actor"]!.AsObject().Reverse().Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));
        item["event"] = reversed;
        var text = response.ToJsonString(new JsonSerializerOptions { WriteIndented = true }).Replace("\"n\": 10.5", "\"n\": 105E-1", StringComparison.Ordinal);
        Assert.Contains("105E-1", text);
        Assert.Contains("\\u00E9", text);

        var result = await VerifyTextAsync(text);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal($"verified: 3 events against checkpoint {LogFixture.Origin} size 20\n", result.Output);
    }

    [Fact]
    public async Task A_changed_field_fails_however_the_hashes_are_patched()
    {
        var tampered = Event(9);
        tampered["outcome"] = "failure";
        var forged = LeafHash(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(tampered.ToJsonString())));
        var real = LeafHash(_log.Leaf(9));

        var onlyEvent = await SearchResponseAsync(17, 4, 9);
        onlyEvent["items"]![2]!["event"] = tampered.DeepClone();
        var itemHashToo = onlyEvent.DeepClone();
        itemHashToo["items"]![2]!["leafHash"] = forged;
        var bothHashes = itemHashToo.DeepClone();
        bothHashes["items"]![2]!["inclusion"]!["leafHash"] = forged;

        var results = new[] { await VerifyAsync(onlyEvent), await VerifyAsync(itemHashToo), await VerifyAsync(bothHashes) };

        Assert.All(results, r => Assert.Equal((1, ""), (r.ExitCode, r.Output)));
        Assert.Equal($"{Prefix} 9 (item 2): the event hashes to {forged}, but the response names leaf hash {real}\n", results[0].Error);
        Assert.Equal($"{Prefix} 9 (item 2): the event hashes to {forged}, but its inclusion proof names leaf hash {real}\n", results[1].Error);
        Assert.StartsWith($"{Prefix} 9 (item 2): inclusion proof for leaf 9 leads to root ", results[2].Error);
        Assert.EndsWith($", not the expected root {await RootAsync()} of tree size 20\n", results[2].Error);
    }

    [Fact]
    public async Task A_changed_field_in_a_single_event_fails()
    {
        var response = await SingleResponseAsync(5);
        response["event"]!["event"]!["actor"]!["name"] = "Bob";

        var result = await VerifyAsync(response);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"{Prefix} 5: the event hashes to ", result.Error);
        Assert.EndsWith($", but the response names leaf hash {LeafHash(_log.Leaf(5))}\n", result.Error);
    }

    [Fact]
    public async Task An_altered_proof_hash_fails()
    {
        var response = await SearchResponseAsync(17, 4, 9);
        var hashes = response["items"]![2]!["inclusion"]!["hashes"]!.AsArray();
        var bytes = Convert.FromBase64String(hashes[1]!.GetValue<string>());
        bytes[0] ^= 0x01;
        hashes[1] = Convert.ToBase64String(bytes);

        var result = await VerifyAsync(response);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"{Prefix} 9 (item 2): inclusion proof for leaf 9 leads to root ", result.Error);
        Assert.EndsWith($", not the expected root {await RootAsync()} of tree size 20\n", result.Error);
    }

    [Fact]
    public async Task A_proof_for_another_tree_size_fails()
    {
        var response = await SearchResponseAsync(17, 4, 9);
        response["items"]![1]!["inclusion"] = await InclusionAsync(4, Size - 1);

        var result = await VerifyAsync(response);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"{Prefix} 4 (item 1): the proof is for tree size 19 but the checkpoint is at tree size 20\n", result.Error);
    }

    [Fact]
    public async Task Indexes_swapped_between_two_items_fail()
    {
        var itemsOnly = await SearchResponseAsync(17, 4, 9);
        itemsOnly["items"]![0]!["index"] = 4;
        itemsOnly["items"]![1]!["index"] = 17;
        var withProofs = itemsOnly.DeepClone();
        withProofs["items"]![0]!["inclusion"]!["index"] = 4;
        withProofs["items"]![1]!["inclusion"]!["index"] = 17;

        var first = await VerifyAsync(itemsOnly);
        var second = await VerifyAsync(withProofs);

        Assert.Equal((1, 1), (first.ExitCode, second.ExitCode));
        Assert.Equal($"{Prefix} 4 (item 0): the inclusion proof is for index 17, not 4\n", first.Error);
        Assert.Equal(
            $"{Prefix} 4 (item 0): inclusion proof for leaf 4 in tree size 20 must have {InclusionProof.ExpectedLength(4, Size)} hashes, not {InclusionProof.ExpectedLength(17, Size)}\n",
            second.Error);
    }

    [Fact]
    public async Task A_duplicated_item_fails()
    {
        var response = await SearchResponseAsync(17, 4, 9);
        response["items"]!.AsArray().Add(response["items"]![1]!.DeepClone());

        var result = await VerifyAsync(response);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"{Prefix} 4 (item 3): index 4 already appeared as item 1: a response cannot hold one log entry twice\n", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public async Task A_checkpoint_signed_by_another_key_fails_and_a_rotation_key_verifies()
    {
        using var other = NoteSigner.Generate("atp.example.com/test-cell-1");
        var response = await SearchResponseAsync(17, 4, 9);
        response["checkpoint"] = (await _log.SignCheckpointAsync(Size, signer: other)).ToString();

        var untrusted = await VerifyAsync(response);
        var rotated = await VerifyAsync(response, "--key", other.Verifier.VerifierKey);

        Assert.Equal(1, untrusted.ExitCode);
        Assert.Equal("FAILED: checkpoint: the note carries no signature by a trusted key\n", untrusted.Error);
        Assert.Equal(0, rotated.ExitCode);
        Assert.Equal($"verified: 3 events against checkpoint {LogFixture.Origin} size 20\n", rotated.Output);
    }

    [Fact]
    public async Task A_checkpoint_with_another_root_fails()
    {
        // A split view: a second history of the same log, its checkpoint signed with the real key.
        using var fork = new LogFixture(Size, contentSalt: "forked", signer: NoteSigner.Parse(_log.Signer.ExportSignerKey()));
        var forked = await fork.SignCheckpointAsync(Size);
        var signedFork = await SearchResponseAsync(17, 4, 9);
        signedFork["checkpoint"] = forked.ToString();
        var editedRoot = await SearchResponseAsync(17, 4, 9);
        var note = editedRoot["checkpoint"]!.GetValue<string>();
        editedRoot["checkpoint"] = note.Replace(await RootAsync(), (await fork.Proofs.RootAsync(Size, CancellationToken.None)).ToBase64(), StringComparison.Ordinal);

        var first = await VerifyAsync(signedFork);
        var second = await VerifyAsync(editedRoot);

        Assert.Equal(1, first.ExitCode);
        Assert.Equal(
            $"{Prefix} 17 (item 0): inclusion proof for leaf 17 leads to root {await RootAsync()}, not the expected root {(await fork.Proofs.RootAsync(Size, CancellationToken.None)).ToBase64()} of tree size 20\n",
            first.Error);
        Assert.Equal(1, second.ExitCode);
        Assert.StartsWith("FAILED: checkpoint: the signature by trusted key atp.example.com/test-cell-1 (", second.Error);
        Assert.EndsWith(") does not verify: the note was altered or mis-signed\n", second.Error);
    }

    [Fact]
    public async Task A_wrong_origin_fails()
    {
        var result = await VerifyAsync(await SearchResponseAsync(17), "--origin", "atp.example.com/test-cell-1/globex");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"FAILED: checkpoint is for log {LogFixture.Origin}, not the expected atp.example.com/test-cell-1/globex\n", result.Error);
    }

    [Fact]
    public async Task A_pending_proof_verifies_nothing_and_fails()
    {
        var single = new JsonObject { ["event"] = Item(19), ["proofPending"] = true };
        var page = await SearchResponseAsync(17, 18);
        var pendingItem = Item(19);
        pendingItem["proofPending"] = true;
        page["items"]!.AsArray().Add(pendingItem);

        var first = await VerifyAsync(single);
        var second = await VerifyAsync(page);

        Assert.Equal((1, ""), (first.ExitCode, first.Output));
        Assert.Equal($"{Prefix} 19: proof pending: the event is not yet covered by a signed checkpoint, so nothing was verified (ask again after the next checkpoint)\n", first.Error);
        Assert.Equal((1, ""), (second.ExitCode, second.Output));
        Assert.Equal($"{Prefix} 19 (item 2): proof pending: the event is not yet covered by a signed checkpoint, so it was not verified\n", second.Error);
    }

    [Fact]
    public async Task Malformed_responses_exit_2_naming_the_problem()
    {
        var cases = new List<(string Text, string Message)>
        {
            ("{ \"items\": [", "is not valid JSON"),
            ("[]", "the response is an array, not an object"),
            ("{\"nextCursor\":null}", "the response has neither \"items\" (GET …/events?verify=true) nor \"event\" (GET …/events/{id}?verify=true)"),
            (Edit(await SearchResponseAsync(17), r => r.Remove("checkpoint")), "the response has no \"checkpoint\""),
            (Edit(await SearchResponseAsync(17), r => r["checkpoint"] = "hello"), "checkpoint is not a signed note"),
            (Edit(await SearchResponseAsync(17, 4), r => r["items"]![1]!.AsObject().Remove("index")), "items[1] has no \"index\""),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!["index"] = -1), "items[0].index is not a non-negative integer"),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!["leafHash"] = "AAAA"), "items[0].leafHash is not standard base64 of 32 bytes"),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!["event"] = "{}"), "items[0].event is a string, not an object"),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!.AsObject().Remove("inclusion")), "items[0] has no \"inclusion\" proof (was it fetched with ?verify=true?)"),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!["inclusion"]!["hashes"]![0] = "***"), "items[0].inclusion: hashes[0] is not base64"),
            (Edit(await SearchResponseAsync(17), r => r["items"]![0]!["inclusion"]!["treeSize"] = "20"), "items[0].inclusion is not an inclusion proof"),
            (Edit(await SingleResponseAsync(5), r => r.Remove("proof")), "the response has no \"proof\" (was it fetched with ?verify=true?)"),
            ((await SearchResponseAsync(17)).ToJsonString().Replace("\"nextCursor\"", "\"items\":[],\"nextCursor\"", StringComparison.Ordinal), "is not valid JSON"),
        };

        foreach (var (text, message) in cases)
        {
            var result = await VerifyTextAsync(text);
            Assert.True(result.ExitCode == 2, $"{message}: exit {result.ExitCode}, {result.Error}");
            Assert.StartsWith("atp: response file '", result.Error);
            Assert.Contains(message, result.Error);
            Assert.Equal("", result.Output);
        }
    }

    [Fact]
    public async Task Unreadable_file_bad_key_and_oversized_file_exit_2()
    {
        var valid = _log.Write("page.json", Encoding.UTF8.GetBytes((await SearchResponseAsync(17)).ToJsonString()));
        var huge = Path.Combine(_log.Directory, "huge.json");
        using (var stream = File.Create(huge))
        {
            stream.SetLength(Verify.VerifyEventsCommand.MaxResponseBytes + 1); // sparse: nothing is written
        }

        var missing = await CliRun.InProcessAsync("verify", "events", Path.Combine(_log.Directory, "nope.json"), "--key", _log.VerifierKey);
        var badKey = await CliRun.InProcessAsync("verify", "events", valid, "--key", "not-a-key");
        var noKey = await CliRun.InProcessAsync("verify", "events", valid);
        var tooLarge = await CliRun.InProcessAsync("verify", "events", huge, "--key", _log.VerifierKey);

        Assert.Equal((2, 2, 2, 2), (missing.ExitCode, badKey.ExitCode, noKey.ExitCode, tooLarge.ExitCode));
        Assert.StartsWith($"atp: cannot read response file '{Path.Combine(_log.Directory, "nope.json")}'", missing.Error);
        Assert.StartsWith("atp: --key 'not-a-key': ", badKey.Error);
        Assert.Contains("--key", noKey.Error);
        Assert.Equal($"atp: response file '{huge}' is larger than 256 MiB\n", tooLarge.Error);
    }

    [Fact]
    public async Task Large_pages_report_progress_on_standard_error()
    {
        const int count = 10_001;
        using var log = new LogFixture(Enumerable.Range(0, count).Select(i => Encoding.UTF8.GetBytes($"{{\"id\":\"e-{i}\",\"action\":\"document.read\"}}")));
        var items = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            var hashes = await log.Proofs.InclusionProofAsync((ulong)i, count, CancellationToken.None);
            items.Add(new JsonObject
            {
                ["index"] = i,
                ["leafHash"] = LeafHash(log.Leaf(i)),
                ["event"] = JsonNode.Parse(log.Leaf(i)),
                ["inclusion"] = new JsonObject { ["index"] = i, ["treeSize"] = count, ["hashes"] = new JsonArray([.. hashes.Select(h => (JsonNode)h.ToBase64())]) },
            });
        }

        var response = new JsonObject { ["items"] = items, ["nextCursor"] = null, ["checkpoint"] = (await log.SignCheckpointAsync(count)).ToString() };
        var file = log.Write("big.json", Encoding.UTF8.GetBytes(response.ToJsonString()));

        var result = await CliRun.InProcessAsync("verify", "events", file, "--key", log.VerifierKey);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"verified: 10001 events against checkpoint {LogFixture.Origin} size 10001\n", result.Output);
        Assert.Equal("verified 10000 of 10001 events…\n", result.Error);
    }

    public void Dispose() => _log.Dispose();

    private static JsonObject Event(int i) => new()
    {
        ["id"] = $"0197a0c4-5e1f-7a3b-9c2d-{i:x12}",
        ["type"] = "acme.document.v1",
        ["occurredAt"] = $"2025-06-{1 + (i % 28):00}T09:{i % 60:00}:00.125Z",
        ["receivedAt"] = $"2025-06-{1 + (i % 28):00}T09:{i % 60:00}:01.5Z",
        ["actor"] = new JsonObject { ["type"] = "user", ["id"] = $"u-{1 + (i % 3)}", ["name"] = i % 3 == 0 ? "Ann" : "Zoë" },
        ["action"] = i % 2 == 0 ? "document.update" : "document.read",
        ["targets"] = new JsonArray(new JsonObject { ["type"] = "document", ["id"] = $"d-{9 + i}" }),
        ["outcome"] = "success",
        ["data"] = new JsonObject { ["n"] = 1.5 + i, ["s"] = "é" },
    };

    private static string LeafHash(byte[] leaf) => MerkleHasher.HashLeaf(leaf).ToBase64();

    private static string Edit(JsonObject response, Action<JsonObject> edit)
    {
        edit(response);
        return response.ToJsonString();
    }

    private async Task<string> RootAsync() => (await _log.Proofs.RootAsync(Size, CancellationToken.None)).ToBase64();

    /// <summary><c>{index, leafHash, event}</c> as the server writes it: the event parsed back from its leaf.</summary>
    private JsonObject Item(int index) => new()
    {
        ["index"] = index,
        ["leafHash"] = LeafHash(_log.Leaf(index)),
        ["event"] = JsonNode.Parse(_log.Leaf(index)),
    };

    private async Task<JsonObject> InclusionAsync(int index, int treeSize = Size)
    {
        var hashes = await _log.Proofs.InclusionProofAsync((ulong)index, (ulong)treeSize, CancellationToken.None);
        return new JsonObject
        {
            ["index"] = index,
            ["treeSize"] = treeSize,
            ["leafHash"] = LeafHash(_log.Leaf(index)),
            ["hashes"] = new JsonArray([.. hashes.Select(h => (JsonNode)h.ToBase64())]),
        };
    }

    /// <summary>The body of <c>GET …/events?verify=true</c>: the items in the given order, each with its proof.</summary>
    private async Task<JsonObject> SearchResponseAsync(params int[] indexes)
    {
        var items = new JsonArray();
        foreach (var index in indexes)
        {
            var item = Item(index);
            item["inclusion"] = await InclusionAsync(index);
            items.Add(item);
        }

        return new JsonObject { ["items"] = items, ["nextCursor"] = "eyJpIjo0fQ", ["checkpoint"] = (await _log.SignCheckpointAsync(Size)).ToString() };
    }

    /// <summary>The body of <c>GET …/events/{id}?verify=true</c>.</summary>
    private async Task<JsonObject> SingleResponseAsync(int index) => new()
    {
        ["event"] = Item(index),
        ["proof"] = new JsonObject { ["checkpoint"] = (await _log.SignCheckpointAsync(Size)).ToString(), ["inclusion"] = await InclusionAsync(index) },
    };

    private Task<CliResult> VerifyAsync(JsonNode response, params string[] options) => VerifyTextAsync(response.ToJsonString(), options);

    private Task<CliResult> VerifyTextAsync(string text, params string[] options)
    {
        var file = _log.Write($"response-{Guid.NewGuid():n}.json", Encoding.UTF8.GetBytes(text));
        return CliRun.InProcessAsync(["verify", "events", file, "--key", _log.VerifierKey, .. options]);
    }
}
