using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Atp.Core.Export;
using Spectre.Console;

namespace Atp.Cli.Verify;

/// <summary>
/// <c>atp verify bundle FILE [--key VKEY ...] [--previous FILE]</c>: verifies an export bundle offline (no server):
/// the manifest signature, the signed checkpoint, every file's size and SHA-256, every entry against the checkpoint's
/// root (or its inclusion proof in a filtered bundle) and the consistency with the previous bundle. Exit 0 verified,
/// 1 a check failed (the message names the member and, for an entry, its index and line), 2 unusable input.
/// </summary>
internal static class VerifyBundleCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("bundle-file") { Description = "Export bundle (.tar) as written by an export job or atp export" };
        var keys = new Option<string[]>("--key")
        {
            Description = "Trusted verifier key <name>+<id>+<base64> of the source cell (repeatable); without it the key the bundle names is used and the output says it was not pinned",
            Arity = ArgumentArity.OneOrMore,
        };
        var previous = new Option<FileInfo?>("--previous") { Description = "The bundle before this one: this bundle must continue its checkpoint (same origin and tenant)" };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar" };
        var command = new Command("bundle", "Verify an export bundle offline: signature, checkpoint, file digests, every entry, consistency with the previous bundle.")
        {
            file, keys, previous, noProgress,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(file)!, parse.GetValue(keys) ?? [], parse.GetValue(previous), parse.GetValue(noProgress),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    /// <summary>
    /// Verifies <paramref name="bundle"/> (and the signed head of <paramref name="previous"/>), throwing
    /// <see cref="CliInputException"/> for a file that cannot be opened; shared with <c>atp import</c>.
    /// </summary>
    internal static async Task<BundleVerification> VerifyAsync(
        FileInfo bundle, BundleVerifier verifier, FileInfo? previous, Func<Func<IProgress<long>?, Task<BundleVerification>>, long, Task<BundleVerification>> withProgress, CancellationToken cancellationToken)
    {
        BundleManifest? previousManifest = null;
        if (previous is not null)
        {
            var head = await WithFileAsync(previous, "previous bundle", stream => verifier.VerifyHeadAsync(stream, cancellationToken)).ConfigureAwait(false);
            if (!head.IsValid)
            {
                return head with { Failure = head.Failure! with { Member = $"--previous {previous.Name}: {head.Failure.Member}" } };
            }

            previousManifest = head.Manifest;
        }

        return await WithFileAsync(bundle, "bundle", stream => withProgress(progress => verifier.VerifyAsync(stream, previousManifest, progress, cancellationToken), stream.Length)).ConfigureAwait(false);
    }

    private static async Task<int> RunAsync(FileInfo file, string[] keyTexts, FileInfo? previous, bool noProgress, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var verifier = new BundleVerifier(VerifyCommand.ParseKeys(keyTexts));
        var stopwatch = Stopwatch.StartNew();
        var result = await VerifyAsync(
            file, verifier, previous, (run, total) => !noProgress && IsTerminal(output) ? WithProgressBarAsync(run, total) : run(null), cancellationToken).ConfigureAwait(false);
        if (!result.IsValid)
        {
            await error.WriteLineAsync($"FAILED: {result.Failure}").ConfigureAwait(false);
            return ExitCodes.VerificationFailed;
        }

        var manifest = result.Manifest!;
        var seconds = Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-6);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"verified: bundle of tenant {manifest.Tenant} ({manifest.Origin}), entries [{manifest.From}, {manifest.To}): {manifest.Events} events in {manifest.Files.Count} files, checkpoint of size {manifest.TreeSize} root {manifest.RootHash} ({file.Length / 1e6:F1} MB in {seconds:F2} s)")).ConfigureAwait(false);
        await output.WriteLineAsync(result.KeyPinned
            ? $"key: signed by {result.VerifierKey} (pinned with --key)"
            : $"key NOT pinned: verified against the key the bundle itself names, {result.VerifierKey}; compare it with the source cell's published key (GET /v1/log/keys) and pass it with --key").ConfigureAwait(false);
        await output.WriteLineAsync(manifest.Complete
            ? "complete: every entry in the range is present and in order (the root rebuilt from them is the checkpoint's)"
            : $"filtered: holds only the entries matching {manifest.Filters?.GetRawText() ?? "the export's filters"}, each with its inclusion proof; this bundle cannot prove completeness").ConfigureAwait(false);
        if (manifest.Previous is { } before)
        {
            await output.WriteLineAsync($"previous: consistent with the checkpoint of size {before.TreeSize} root {before.RootHash}{(previous is null ? string.Empty : $" ({previous.Name})")}").ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }

    private static async Task<BundleVerification> WithFileAsync(FileInfo file, string what, Func<FileStream, Task<BundleVerification>> run)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot open the {what} '{file.FullName}': {e.Message}");
        }

        await using (stream.ConfigureAwait(false))
        {
            return await run(stream).ConfigureAwait(false);
        }
    }

    private static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    private static async Task<BundleVerification> WithProgressBarAsync(Func<IProgress<long>?, Task<BundleVerification>> run, long total)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        BundleVerification? result = null;
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("verifying bundle", maxValue: Math.Max(1, total));
                result = await run(new Progress<long>(read => task.Value = read)).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);
        return result!;
    }
}
