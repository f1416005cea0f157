using System.CommandLine;
using Atp.Integrity;

namespace Atp.Cli.Verify;

/// <summary>
/// <c>atp verify checkpoint | inclusion | consistency | events</c>: checks ATP data offline against verifier keys the user
/// trusts, trusting nothing the server says. Exit 0 verified, 1 a check failed, 2 unusable input.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var command = new Command("verify", "Verify checkpoints and proofs offline, trusting only the verifier keys you pass.");
        command.Subcommands.Add(CreateCheckpoint());
        command.Subcommands.Add(CreateInclusion());
        command.Subcommands.Add(CreateConsistency());
        command.Subcommands.Add(VerifyEventsCommand.Create());
        command.Subcommands.Add(VerifyStoreCommand.Create());
        command.Subcommands.Add(VerifyBundleCommand.Create());
        return command;
    }

    internal static Option<string[]> KeyOption() => new("--key")
    {
        Description = "Trusted verifier key <name>+<id>+<base64> (repeat for key rotation: any one trusted signature suffices)",
        Required = true,
        Arity = ArgumentArity.OneOrMore,
    };

    internal static Option<string> OriginOption() => new("--origin") { Description = "Expected log origin (e.g. atp.example.com/westeu-prod-1/acme); refuse any other" };

    private static Command CreateCheckpoint()
    {
        var file = new Argument<FileInfo>("checkpoint-file") { Description = "Signed checkpoint (C2SP signed note), as served by GET …/log/checkpoint" };
        var keys = KeyOption();
        var origin = OriginOption();
        var command = new Command("checkpoint", "Verify a checkpoint's signature.") { file, keys, origin };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var trusted = ParseKeys(parse.GetValue(keys)!);
            var opened = await OpenCheckpointAsync(parse.GetValue(file)!, trusted, parse.GetValue(origin), "checkpoint", cancellationToken).ConfigureAwait(false);
            if (opened.Checkpoint is not { } checkpoint)
            {
                return await FailAsync(error, opened.Failure!).ConfigureAwait(false);
            }

            await output.WriteLineAsync($"verified: checkpoint of {checkpoint.Origin} at tree size {checkpoint.Size}, root {checkpoint.Root.ToBase64()}").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command CreateInclusion()
    {
        var checkpointFile = new Option<FileInfo>("--checkpoint") { Description = "Signed checkpoint the proof leads to", Required = true };
        var leafFile = new Option<FileInfo>("--leaf") { Description = "File holding the exact leaf bytes (GET …/log/entries/{index})", Required = true };
        var proofFile = new Option<FileInfo>("--proof") { Description = "Proof JSON {\"index\",\"treeSize\",\"hashes\"} (GET …/log/proof/inclusion)", Required = true };
        var keys = KeyOption();
        var origin = OriginOption();
        var command = new Command("inclusion", "Verify that a leaf is in the log at a signed checkpoint.") { checkpointFile, keys, leafFile, proofFile, origin };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var trusted = ParseKeys(parse.GetValue(keys)!);
            var proofPath = parse.GetValue(proofFile)!;
            var proof = ProofFiles.Parse(await InputFiles.ReadAsync(proofPath, "proof", cancellationToken).ConfigureAwait(false), ProofJsonContext.Default.InclusionProofFile, proofPath);
            if (proof.Index is not { } index || proof.TreeSize is not { } treeSize)
            {
                throw new CliInputException($"proof file '{proofPath.FullName}' needs \"index\" and \"treeSize\"");
            }

            var hashes = ProofFiles.DecodeHashes(proof.Hashes, proofPath);
            var leaf = await InputFiles.ReadAsync(parse.GetValue(leafFile)!, "leaf", cancellationToken).ConfigureAwait(false);
            var opened = await OpenCheckpointAsync(parse.GetValue(checkpointFile)!, trusted, parse.GetValue(origin), "checkpoint", cancellationToken).ConfigureAwait(false);
            if (opened.Checkpoint is not { } checkpoint)
            {
                return await FailAsync(error, opened.Failure!).ConfigureAwait(false);
            }

            var leafHash = MerkleHasher.HashLeaf(leaf);
            if (proof.LeafHash is { } claimed && claimed != leafHash.ToBase64())
            {
                return await FailAsync(error, $"the leaf bytes hash to {leafHash.ToBase64()}, but the proof names leaf hash {claimed}").ConfigureAwait(false);
            }

            if (CheckInclusion(index, treeSize, leafHash, hashes, checkpoint) is { } failure)
            {
                return await FailAsync(error, failure).ConfigureAwait(false);
            }

            await output.WriteLineAsync($"verified: leaf {index} (leaf hash {leafHash.ToBase64()}) is in {checkpoint.Origin} at tree size {checkpoint.Size}, root {checkpoint.Root.ToBase64()}").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command CreateConsistency()
    {
        var oldFile = new Option<FileInfo>("--old") { Description = "Signed checkpoint of the older tree", Required = true };
        var newFile = new Option<FileInfo>("--new") { Description = "Signed checkpoint of the newer tree", Required = true };
        var proofFile = new Option<FileInfo>("--proof") { Description = "Proof JSON {\"from\",\"to\",\"hashes\"} (GET …/log/proof/consistency)", Required = true };
        var keys = KeyOption();
        var origin = OriginOption();
        var command = new Command("consistency", "Verify that the newer checkpoint's tree is an append-only extension of the older one's.") { oldFile, newFile, keys, proofFile, origin };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var trusted = ParseKeys(parse.GetValue(keys)!);
            var proofPath = parse.GetValue(proofFile)!;
            var proof = ProofFiles.Parse(await InputFiles.ReadAsync(proofPath, "proof", cancellationToken).ConfigureAwait(false), ProofJsonContext.Default.ConsistencyProofFile, proofPath);
            if (proof.From is not { } from || proof.To is not { } to)
            {
                throw new CliInputException($"proof file '{proofPath.FullName}' needs \"from\" and \"to\"");
            }

            var hashes = ProofFiles.DecodeHashes(proof.Hashes, proofPath);
            var expectedOrigin = parse.GetValue(origin);
            var older = await OpenCheckpointAsync(parse.GetValue(oldFile)!, trusted, expectedOrigin, "old checkpoint", cancellationToken).ConfigureAwait(false);
            if (older.Checkpoint is not { } oldCheckpoint)
            {
                return await FailAsync(error, older.Failure!).ConfigureAwait(false);
            }

            var newer = await OpenCheckpointAsync(parse.GetValue(newFile)!, trusted, expectedOrigin, "new checkpoint", cancellationToken).ConfigureAwait(false);
            if (newer.Checkpoint is not { } newCheckpoint)
            {
                return await FailAsync(error, newer.Failure!).ConfigureAwait(false);
            }

            if (oldCheckpoint.Origin != newCheckpoint.Origin)
            {
                return await FailAsync(error, $"the checkpoints are of different logs: {oldCheckpoint.Origin} and {newCheckpoint.Origin}").ConfigureAwait(false);
            }

            if (from != oldCheckpoint.Size || to != newCheckpoint.Size)
            {
                return await FailAsync(error, $"the proof is from size {from} to {to}, but the checkpoints are at sizes {oldCheckpoint.Size} and {newCheckpoint.Size}").ConfigureAwait(false);
            }

            var result = ConsistencyProof.Verify(from, to, hashes, oldCheckpoint.Root.AsSpan(), newCheckpoint.Root.AsSpan());
            if (!result.IsValid)
            {
                return await FailAsync(error, result.Failure!).ConfigureAwait(false);
            }

            await output.WriteLineAsync($"verified: {newCheckpoint.Origin} at tree size {to} (root {newCheckpoint.Root.ToBase64()}) extends tree size {from} (root {oldCheckpoint.Root.ToBase64()})").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    internal static List<NoteVerifier> ParseKeys(string[] keys)
    {
        var verifiers = new List<NoteVerifier>(keys.Length);
        foreach (var key in keys)
        {
            if (!NoteVerifier.TryParse(key, out var verifier, out var error))
            {
                throw new CliInputException($"--key '{key}': {error}");
            }

            verifiers.Add(verifier);
        }

        return verifiers;
    }

    /// <summary>
    /// Checks an inclusion proof of <paramref name="leafHash"/> against a verified checkpoint: the proof must be for the
    /// checkpoint's tree size and lead to its root. Returns why not, or null when it verifies.
    /// </summary>
    internal static string? CheckInclusion(ulong index, ulong treeSize, in Hash leafHash, List<byte[]> hashes, Checkpoint checkpoint)
    {
        if (treeSize != checkpoint.Size)
        {
            return $"the proof is for tree size {treeSize} but the checkpoint is at tree size {checkpoint.Size}";
        }

        return InclusionProof.Verify(index, treeSize, leafHash.AsSpan(), hashes, checkpoint.Root.AsSpan()).Failure;
    }

    private static async Task<(Checkpoint? Checkpoint, string? Failure)> OpenCheckpointAsync(FileInfo file, List<NoteVerifier> trusted, string? expectedOrigin, string what, CancellationToken cancellationToken)
    {
        var bytes = await InputFiles.ReadAsync(file, what, cancellationToken).ConfigureAwait(false);
        return OpenCheckpoint(bytes, trusted, expectedOrigin, what, $"{what} file '{file.FullName}'");
    }

    /// <summary>
    /// Opens a signed checkpoint with the trusted keys: a failed signature or origin check is a failure (exit 1),
    /// bytes that are not a signed note at all are unusable input (exit 2); <paramref name="source"/> names them.
    /// </summary>
    internal static (Checkpoint? Checkpoint, string? Failure) OpenCheckpoint(byte[] bytes, List<NoteVerifier> trusted, string? expectedOrigin, string what, string source)
    {
        if (!SignedNote.TryParse(bytes, out _, out var parseError))
        {
            throw new CliInputException($"{source} is not a signed note: {parseError}");
        }

        var result = Checkpoint.Open(bytes, trusted, out var checkpoint);
        if (!result.IsValid)
        {
            return (null, $"{what}: {result.Failure}");
        }

        if (expectedOrigin is not null && checkpoint!.Origin != expectedOrigin)
        {
            return (null, $"{what} is for log {checkpoint.Origin}, not the expected {expectedOrigin}");
        }

        return (checkpoint, null);
    }

    internal static async Task<int> FailAsync(TextWriter error, string reason)
    {
        await error.WriteLineAsync($"FAILED: {reason}").ConfigureAwait(false);
        return ExitCodes.VerificationFailed;
    }
}
