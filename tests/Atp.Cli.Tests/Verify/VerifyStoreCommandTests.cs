using Atp.Integrity;

namespace Atp.Cli.Tests;

/// <summary>
/// <c>atp verify store</c> on real stores of both engines: a clean store verifies; each kind of alteration of the stored
/// rows — a leaf byte, a Merkle node, the tree head's root, a checkpoint's signature, a validly signed checkpoint of
/// another tree — fails with exit 1 and a mismatch line naming the tenant and the index or tree size.
/// </summary>
public sealed class VerifyStoreCommandTests
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_clean_store_verifies(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.Success, result.ExitCode);
        Assert.Contains("verified: 2 tenants, 42 entries", result.Output, StringComparison.Ordinal);
        Assert.Contains("6 checkpoints", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("mismatch", result.Output, StringComparison.Ordinal);
        Assert.Contains("progress: 42/42 entries (100%)", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_flipped_leaf_byte_fails_naming_tenant_and_index(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);
        await store.FlipByteAsync("leaf", "acme", 5, offset: 12);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Equal("mismatch: tenant acme, index 5: leaf", Assert.Single(Mismatches(result)).Split(": the")[0]);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_flipped_node_fails_naming_tenant_and_index(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);

        // Leaf 11 completes node (level 1, index 5) and node (level 2, index 2); the second is altered.
        await store.FlipByteAsync("nodes", "globex", 11, offset: 32 + 7);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        var line = Assert.Single(Mismatches(result));
        Assert.StartsWith("mismatch: tenant globex, index 11: node: node (level 2, index 2)", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task An_altered_tree_head_root_fails_naming_tenant_and_size(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);
        var root = await store.ReadRootAsync("acme");
        root[0] ^= 0x80;
        await store.WriteRootAsync("acme", root);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.StartsWith("mismatch: tenant acme, tree size 21: tree-head", Assert.Single(Mismatches(result)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task An_altered_checkpoint_signature_fails_naming_tenant_and_size(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);
        var note = await store.ReadCheckpointAsync("globex", 14);

        // One bit of the signature (the last base64 character before the newline carries signature bits only).
        var at = note.Length - 3;
        var altered = note[..at] + (note[at] == 'A' ? 'B' : 'A') + note[(at + 1)..];
        await store.WriteCheckpointAsync("globex", 14, altered);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.StartsWith("mismatch: tenant globex, tree size 14: checkpoint-signature", Assert.Single(Mismatches(result)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_validly_signed_but_inconsistent_checkpoint_fails_naming_tenant_and_size(string engine)
    {
        await using var store = await AuditedStore.CreateAsync(engine);

        // The cell's own key signed a different tree of size 14: a fork, which no signature check alone can see.
        var forked = new Checkpoint($"{AuditedStore.CellOrigin}/acme", 14, MerkleHasher.HashLeaf("fork"u8)).Sign(store.Signer).ToString();
        await store.WriteCheckpointAsync("acme", 14, forked);

        var result = await VerifyAsync(store);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        var line = Assert.Single(Mismatches(result));
        Assert.StartsWith("mismatch: tenant acme, tree size 14: checkpoint-inconsistent", line, StringComparison.Ordinal);
        Assert.Contains("not consistent with the checkpoint of size 7", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_store_or_with_both_it_is_a_usage_error()
    {
        Assert.Equal(ExitCodes.BadInput, (await CliRun.InProcessAsync("verify", "store")).ExitCode);
        Assert.Equal(ExitCodes.BadInput, (await CliRun.InProcessAsync("verify", "store", "--data", "/nonexistent-atp", "--postgres", "Host=x")).ExitCode);
        var missing = await CliRun.InProcessAsync("verify", "store", "--data", Path.Combine(Path.GetTempPath(), "atp-no-such-store"), "--key", "x");
        Assert.Equal(ExitCodes.BadInput, missing.ExitCode);
    }

    private static Task<CliResult> VerifyAsync(AuditedStore store) => CliRun.InProcessAsync(["verify", "store", .. store.VerifyArguments]);

    private static List<string> Mismatches(CliResult result) =>
        result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("mismatch:", StringComparison.Ordinal)).ToList();
}
