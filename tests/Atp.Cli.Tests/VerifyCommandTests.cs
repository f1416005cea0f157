using Atp.Integrity;

namespace Atp.Cli.Tests;

public sealed class VerifyCommandTests : IDisposable
{
    private readonly LogFixture _log = new(21);

    [Fact]
    public async Task Checkpoint_verifies_and_names_origin_size_and_root()
    {
        var file = await _log.WriteCheckpointAsync(21);
        var root = (await _log.Proofs.RootAsync(21, CancellationToken.None)).ToBase64();

        var result = await CliRun.InProcessAsync("verify", "checkpoint", file, "--key", _log.VerifierKey);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"verified: checkpoint of {LogFixture.Origin} at tree size 21, root {root}\n", result.Output);
    }

    [Fact]
    public async Task Checkpoint_signed_by_another_key_fails()
    {
        using var other = NoteSigner.Generate("atp.example.com/test-cell-1");
        var file = await _log.WriteCheckpointAsync(21, signer: other);

        var result = await CliRun.InProcessAsync("verify", "checkpoint", file, "--key", _log.VerifierKey);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("FAILED: checkpoint: the note carries no signature by a trusted key\n", result.Error);
    }

    [Fact]
    public async Task Tampered_checkpoint_fails()
    {
        var file = await _log.WriteCheckpointAsync(21);
        await File.WriteAllTextAsync(file, (await File.ReadAllTextAsync(file)).Replace("\n21\n", "\n20\n", StringComparison.Ordinal));

        var result = await CliRun.InProcessAsync("verify", "checkpoint", file, "--key", _log.VerifierKey);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("does not verify", result.Error);
    }

    [Fact]
    public async Task Either_key_of_a_rotation_is_enough()
    {
        using var next = NoteSigner.Generate("atp.example.com/test-cell-1");
        var file = await _log.WriteCheckpointAsync(21, signer: next);

        var result = await CliRun.InProcessAsync("verify", "checkpoint", file, "--key", _log.VerifierKey, "--key", next.Verifier.VerifierKey);

        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Unexpected_origin_fails()
    {
        var file = await _log.WriteCheckpointAsync(21);
        var result = await CliRun.InProcessAsync("verify", "checkpoint", file, "--key", _log.VerifierKey, "--origin", "atp.example.com/test-cell-1/globex");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("not the expected atp.example.com/test-cell-1/globex", result.Error);
    }

    [Fact]
    public async Task Unusable_input_exits_2_with_a_reason()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        var notANote = _log.Write("not-a-note.txt", "hello"u8.ToArray());

        var missing = await CliRun.InProcessAsync("verify", "checkpoint", Path.Combine(_log.Directory, "nope.txt"), "--key", _log.VerifierKey);
        var badKey = await CliRun.InProcessAsync("verify", "checkpoint", checkpoint, "--key", "not-a-key");
        var garbage = await CliRun.InProcessAsync("verify", "checkpoint", notANote, "--key", _log.VerifierKey);
        var noKey = await CliRun.InProcessAsync("verify", "checkpoint", checkpoint);

        Assert.Equal((2, 2, 2, 2), (missing.ExitCode, badKey.ExitCode, garbage.ExitCode, noKey.ExitCode));
        Assert.Contains("cannot read checkpoint file", missing.Error);
        Assert.Contains("--key 'not-a-key'", badKey.Error);
        Assert.Contains("is not a signed note", garbage.Error);
        Assert.Contains("--key", noKey.Error);
    }

    [Fact]
    public async Task Inclusion_verifies_every_leaf()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        for (var i = 0; i < 21; i++)
        {
            var result = await CliRun.InProcessAsync(
                "verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey,
                "--leaf", _log.WriteLeaf(i), "--proof", await _log.WriteInclusionProofAsync((ulong)i, 21));
            Assert.True(result.ExitCode == 0, result.Error);
            Assert.StartsWith($"verified: leaf {i} (leaf hash ", result.Output);
            Assert.Contains($"is in {LogFixture.Origin} at tree size 21", result.Output);
        }
    }

    [Fact]
    public async Task Inclusion_fails_for_altered_leaf_bytes()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        var leaf = _log.WriteLeaf(7);
        var bytes = await File.ReadAllBytesAsync(leaf);
        bytes[^2] ^= 1;
        await File.WriteAllBytesAsync(leaf, bytes);

        var result = await CliRun.InProcessAsync("verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey, "--leaf", leaf, "--proof", await _log.WriteInclusionProofAsync(7, 21));

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("FAILED: inclusion proof for leaf 7 leads to root", result.Error);
    }

    [Fact]
    public async Task Inclusion_fails_for_a_proof_of_another_size_or_position()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        var leaf = _log.WriteLeaf(7);

        var otherSize = await CliRun.InProcessAsync("verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey, "--leaf", leaf, "--proof", await _log.WriteInclusionProofAsync(7, 20));
        var otherLeaf = await CliRun.InProcessAsync("verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey, "--leaf", leaf, "--proof", await _log.WriteInclusionProofAsync(8, 21));

        Assert.Equal(1, otherSize.ExitCode);
        Assert.Contains("the proof is for tree size 20 but the checkpoint is at tree size 21", otherSize.Error);
        Assert.Equal(1, otherLeaf.ExitCode);
    }

    [Fact]
    public async Task Inclusion_checks_a_leaf_hash_named_in_the_proof()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        var proof = await _log.Proofs.InclusionProofAsync(3, 21, CancellationToken.None);
        var file = _log.WriteJson(new { index = 3, treeSize = 21, leafHash = MerkleHasher.HashLeaf("x"u8).ToBase64(), hashes = proof.Select(h => h.ToBase64()) });

        var result = await CliRun.InProcessAsync("verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey, "--leaf", _log.WriteLeaf(3), "--proof", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("but the proof names leaf hash", result.Error);
    }

    [Fact]
    public async Task Inclusion_with_malformed_proof_json_exits_2_and_short_hash_fails()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        var leaf = _log.WriteLeaf(0);
        var notJson = _log.Write("bad.json", "{ index: 1"u8.ToArray());
        var notBase64 = _log.WriteJson(new { index = 0, treeSize = 21, hashes = new[] { "***" } });
        var noSize = _log.WriteJson(new { index = 0, hashes = Array.Empty<string>() });
        var shortHash = _log.WriteJson(new { index = 0, treeSize = 21, hashes = new[] { "AAAA", "AAAA", "AAAA", "AAAA", "AAAA" } });

        var results = new List<CliResult>();
        foreach (var proof in new[] { notJson, notBase64, noSize, shortHash })
        {
            results.Add(await CliRun.InProcessAsync("verify", "inclusion", "--checkpoint", checkpoint, "--key", _log.VerifierKey, "--leaf", leaf, "--proof", proof));
        }

        Assert.Equal([2, 2, 2, 1], results.Select(r => r.ExitCode));
        Assert.Contains("not valid proof JSON", results[0].Error);
        Assert.Contains("hashes[0] is not base64", results[1].Error);
        Assert.Contains("needs \"index\" and \"treeSize\"", results[2].Error);
        Assert.Contains("proof hash 0 is 3 bytes, not 32", results[3].Error);
    }

    [Fact]
    public async Task Consistency_verifies_between_signed_checkpoints()
    {
        var result = await CliRun.InProcessAsync(
            "verify", "consistency", "--old", await _log.WriteCheckpointAsync(6), "--new", await _log.WriteCheckpointAsync(21),
            "--key", _log.VerifierKey, "--proof", await _log.WriteConsistencyProofAsync(6, 21));

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.StartsWith($"verified: {LogFixture.Origin} at tree size 21 (root ", result.Output);
        Assert.Contains("extends tree size 6", result.Output);
    }

    [Fact]
    public async Task Consistency_fails_for_a_forked_log_signed_by_the_same_key()
    {
        // A split view: the server shows a second history of the same log, signed with the real key.
        using var fork = new LogFixture(21, contentSalt: "forked", signer: NoteSigner.Parse(_log.Signer.ExportSignerKey()));
        var oldCheckpoint = await _log.WriteCheckpointAsync(6);
        var forkedNew = await fork.WriteCheckpointAsync(21);

        var result = await CliRun.InProcessAsync("verify", "consistency", "--old", oldCheckpoint, "--new", forkedNew, "--key", _log.VerifierKey, "--proof", await fork.WriteConsistencyProofAsync(6, 21));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("does not lead to the old root of size 6", result.Error);
    }

    [Fact]
    public async Task Consistency_fails_for_a_tampered_proof_swapped_checkpoints_or_other_logs()
    {
        var old = await _log.WriteCheckpointAsync(6);
        var current = await _log.WriteCheckpointAsync(21);
        var proof = await _log.Proofs.ConsistencyProofAsync(6, 21, CancellationToken.None);
        var flipped = proof.Select(h => h.ToArray()).ToArray();
        flipped[1][0] ^= 0x80;
        var tampered = _log.WriteJson(new { from = 6, to = 21, hashes = flipped.Select(Convert.ToBase64String) });
        var otherLog = await _log.WriteCheckpointAsync(21, origin: "atp.example.com/test-cell-1/globex");

        var results = new[]
        {
            await CliRun.InProcessAsync("verify", "consistency", "--old", old, "--new", current, "--key", _log.VerifierKey, "--proof", tampered),
            await CliRun.InProcessAsync("verify", "consistency", "--old", current, "--new", old, "--key", _log.VerifierKey, "--proof", await _log.WriteConsistencyProofAsync(6, 21)),
            await CliRun.InProcessAsync("verify", "consistency", "--old", old, "--new", otherLog, "--key", _log.VerifierKey, "--proof", await _log.WriteConsistencyProofAsync(6, 21)),
        };

        Assert.All(results, r => Assert.Equal(1, r.ExitCode));
        Assert.Contains("consistency proof does not lead to", results[0].Error);
        Assert.Contains("the proof is from size 6 to 21, but the checkpoints are at sizes 21 and 6", results[1].Error);
        Assert.Contains("different logs", results[2].Error);
    }

    [Fact]
    public async Task The_installed_command_returns_the_documented_exit_codes()
    {
        var checkpoint = await _log.WriteCheckpointAsync(21);
        using var stranger = NoteSigner.Generate("stranger");

        var ok = await CliRun.ProcessAsync("verify", "checkpoint", checkpoint, "--key", _log.VerifierKey);
        var failed = await CliRun.ProcessAsync("verify", "checkpoint", checkpoint, "--key", stranger.Verifier.VerifierKey);
        var usage = await CliRun.ProcessAsync("verify", "checkpoint", checkpoint, "--no-such-option");

        Assert.Equal((0, 1, 2), (ok.ExitCode, failed.ExitCode, usage.ExitCode));
        Assert.StartsWith("verified:", ok.Output);
        Assert.StartsWith("FAILED:", failed.Error);
    }

    public void Dispose() => _log.Dispose();
}
