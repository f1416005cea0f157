using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Atp.Cli.Requests;
using Atp.Cli.Verify;
using Atp.Integrity;
using Spectre.Console;

namespace Atp.Cli.Mirror;

/// <summary>
/// <c>atp mirror --url URL --tenant T --out DIR</c>: downloads a tenant's log as C2SP tlog-tiles into DIR, verifying
/// every tile against the signed checkpoint as it goes, resuming from what DIR already holds, and refusing a log that
/// is not consistent with the checkpoint mirrored last time. Exit 0 mirrored, 1 a verification failed, 2 unusable input.
/// </summary>
internal static class MirrorCommand
{
    /// <summary>Verifier keys taken from the server on first use (no --verifier-key), pinned for later runs.</summary>
    public const string PinnedKeysFile = "verifier-keys";

    private sealed record Arguments(Uri Url, string Tenant, FileInfo? KeyFile, DirectoryInfo Out, string[] VerifierKeys, bool NoProgress);

    public static Command Create(CliEnvironment environment)
    {
        var url = new Option<string>("--url") { Description = "Base URL of the ATP server, e.g. https://atp.example.com", Required = true };
        var tenant = new Option<string>("--tenant") { Description = "The tenant whose log to mirror", Required = true };
        var key = new Option<FileInfo>("--key-file")
        {
            Description = $"File holding an API key with events:read (default: ${RequestCommand.ApiKeyVariable}); never the key itself, since arguments show in the process list",
        };
        var output = new Option<DirectoryInfo>("--out") { Description = "Directory of the mirror (created; reused and checked on later runs)", Required = true };
        var verifierKeys = new Option<string[]>("--verifier-key")
        {
            Description = "Trusted checkpoint verifier key <name>+<id>+<base64> (repeatable); without it the server's GET /v1/log/keys is trusted on first use and pinned",
            Arity = ArgumentArity.OneOrMore,
        };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar" };
        var command = new Command("mirror", "Download and verify a tenant's log as C2SP tlog-tiles, incrementally.") { url, tenant, key, output, verifierKeys, noProgress };
        command.SetAction((parse, cancellationToken) => RunAsync(
            new Arguments(ParseUrl(parse.GetValue(url)!), parse.GetValue(tenant)!, parse.GetValue(key), parse.GetValue(output)!, parse.GetValue(verifierKeys) ?? [], parse.GetValue(noProgress)),
            environment, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    private static string ReadKeyFile(FileInfo file)
    {
        try
        {
            return File.ReadAllText(file.FullName).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot read the key file {file.FullName}: {e.Message}");
        }
    }

    private static async Task<int> RunAsync(Arguments arguments, CliEnvironment environment, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var apiKey = arguments.KeyFile is { } keyFile ? ReadKeyFile(keyFile) : environment.Variable(RequestCommand.ApiKeyVariable);
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            throw new CliInputException($"no API key: set ${RequestCommand.ApiKeyVariable} (or pass --key-file) to a key with events:read for the tenant");
        }

        var directory = arguments.Out.FullName;
        Directory.CreateDirectory(directory);
        using var source = TileSource.Create(arguments.Url, arguments.Tenant, apiKey.Trim());
        var trusted = await TrustedKeysAsync(arguments, source, directory, error, cancellationToken).ConfigureAwait(false);

        var note = await source.CheckpointAsync(cancellationToken).ConfigureAwait(false);
        var opened = Checkpoint.Open(note, trusted, out var checkpoint);
        if (!opened.IsValid || checkpoint is null)
        {
            await error.WriteLineAsync($"FAILED: the server's checkpoint does not verify: {opened.Failure}").ConfigureAwait(false);
            return ExitCodes.VerificationFailed;
        }

        var previous = TileMirror.ReadPrevious(directory);
        var stopwatch = Stopwatch.StartNew();
        var mirror = new TileMirror(source, directory);
        var result = !arguments.NoProgress && IsTerminal(output)
            ? await WithProgressBarAsync(mirror, note, checkpoint, previous, cancellationToken).ConfigureAwait(false)
            : await mirror.RunAsync(note, checkpoint, previous, null, cancellationToken).ConfigureAwait(false);

        var counts = string.Create(CultureInfo.InvariantCulture,
            $"{result.Downloaded} tiles downloaded, {result.Reused} already present and verified, {result.Replaced} local files replaced, in {stopwatch.Elapsed.TotalSeconds:F1} s");
        if (result.Failure is { } failure)
        {
            await error.WriteLineAsync($"FAILED: {failure} ({counts})").ConfigureAwait(false);
            return ExitCodes.VerificationFailed;
        }

        var since = previous is null ? "first mirror" : previous.Size == checkpoint.Size ? "unchanged" : $"consistent with the previous tree size {previous.Size}";
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"mirrored: {checkpoint.Origin} at tree size {checkpoint.Size}, root {checkpoint.Root.ToBase64()} ({since}); {counts}")).ConfigureAwait(false);
        return ExitCodes.Success;
    }

    /// <summary>--verifier-key when given; else the keys pinned by an earlier run; else the server's, pinned now (trust on first use).</summary>
    private static async Task<List<NoteVerifier>> TrustedKeysAsync(Arguments arguments, TileSource source, string directory, TextWriter error, CancellationToken cancellationToken)
    {
        if (arguments.VerifierKeys.Length > 0)
        {
            return VerifyCommand.ParseKeys(arguments.VerifierKeys);
        }

        var pinned = Path.Combine(directory, PinnedKeysFile);
        if (File.Exists(pinned))
        {
            var lines = (await File.ReadAllLinesAsync(pinned, Encoding.UTF8, cancellationToken).ConfigureAwait(false)).Where(l => l.Length > 0).ToArray();
            return VerifyCommand.ParseKeys(lines);
        }

        var published = await source.VerifierKeysAsync(cancellationToken).ConfigureAwait(false);
        var keys = VerifyCommand.ParseKeys([.. published]);
        if (keys.Count == 0)
        {
            throw new CliInputException("the server publishes no verifier key; pass --verifier-key");
        }

        await File.WriteAllLinesAsync(pinned, published, Encoding.UTF8, cancellationToken).ConfigureAwait(false);
        await error.WriteLineAsync($"atp: trusting the server's published verifier keys on first use (pinned in {pinned}): {string.Join(", ", published)}. "
            + "Pass --verifier-key with a key obtained out of band to trust no server.").ConfigureAwait(false);
        return keys;
    }

    private static Uri ParseUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliInputException($"--url '{url}' is not an absolute http:// or https:// URL");

    private static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    private static async Task<MirrorResult> WithProgressBarAsync(TileMirror mirror, byte[] note, Checkpoint checkpoint, Checkpoint? previous, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        MirrorResult? result = null;
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("mirroring tiles", maxValue: 1);
                var progress = new Progress<MirrorProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                });
                result = await mirror.RunAsync(note, checkpoint, previous, progress, cancellationToken).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);
        return result!;
    }
}
