using System.CommandLine;
using Atp.Cli.Verify;
using Atp.Core.Export;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Cli.Import;

/// <summary>
/// <c>atp import FILE --data DIR [--key VKEY ...] [--region R]</c>: verifies an export bundle, then appends it to the
/// tenant's read-only replica in a stopped embedded cell (created on the first import), stores the source's signed
/// checkpoint and records the source's verifier key. Never contacts the source. Exit 0 imported (or nothing to do),
/// 1 the bundle failed verification or does not continue the imported log (nothing stored), 2 unusable input.
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("bundle-file") { Description = "Export bundle (.tar) to import" };
        var data = new Option<DirectoryInfo>("--data") { Description = "Data directory of the stopped embedded (SQLite) offline cell", Required = true };
        var keys = new Option<string[]>("--key")
        {
            Description = "Trusted verifier key of the source cell (repeatable); without it the key the bundle names is trusted and recorded (not pinned)",
            Arity = ArgumentArity.OneOrMore,
        };
        var region = new Option<string>("--region") { Description = "Region of the offline cell (its Atp:Region), the home region of a new replica tenant", DefaultValueFactory = _ => "local" };
        var command = new Command("import", "Verify an export bundle and append it to a read-only replica tenant of a stopped embedded cell.") { file, data, keys, region };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(file)!, parse.GetValue(data)!, parse.GetValue(keys) ?? [], parse.GetValue(region)!,
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo file, DirectoryInfo data, string[] keyTexts, string region, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var verified = await VerifyBundleCommand.VerifyAsync(file, new BundleVerifier(VerifyCommand.ParseKeys(keyTexts)), null, (run, _) => run(null), cancellationToken).ConfigureAwait(false);
        if (!verified.IsValid)
        {
            await error.WriteLineAsync($"FAILED: {verified.Failure}; nothing imported").ConfigureAwait(false);
            return ExitCodes.VerificationFailed;
        }

        if (!verified.KeyPinned)
        {
            // Trust on first use: once a replica has recorded its source's keys, a bundle without --key must be signed by one of them.
            var recorded = ReplicaKeys.Read(data.FullName, verified.Manifest!.Tenant);
            if (recorded.Count > 0 && !recorded.Any(k => k.VerifierKey == verified.VerifierKey))
            {
                await error.WriteLineAsync($"REFUSED: the bundle is signed by {verified.VerifierKey}, not by the source key(s) recorded for replica {verified.Manifest.Tenant} ({string.Join(", ", recorded.Select(k => k.VerifierKey))}); pass the new key with --key if the source rotated it; nothing imported").ConfigureAwait(false);
                return ExitCodes.VerificationFailed;
            }

            await output.WriteLineAsync(recorded.Count > 0
                ? $"key: signed by {verified.VerifierKey}, the source key recorded at the first import"
                : $"key NOT pinned: trusting the key the bundle names, {verified.VerifierKey}; pass the source cell's key with --key").ConfigureAwait(false);
        }

        Directory.CreateDirectory(data.FullName);
        var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = data.FullName }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
        await using (store.ConfigureAwait(false))
        {
            var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using (stream.ConfigureAwait(false))
            {
                var result = await new BundleImporter(store, store, TimeProvider.System).ImportAsync(stream, verified.Manifest!, region, cancellationToken).ConfigureAwait(false);
                if (result.Refused)
                {
                    await error.WriteLineAsync($"REFUSED: {result.Message}; nothing imported").ConfigureAwait(false);
                    return ExitCodes.VerificationFailed;
                }

                ReplicaKeys.Add(data.FullName, verified.Manifest!.Tenant, [verified.VerifierKey!]);
                await output.WriteLineAsync($"{result.Message}: replica tenant {verified.Manifest.Tenant} ({verified.Manifest.Origin}) now has {result.TreeSize} entries, checkpoint of size {verified.Manifest.TreeSize} root {verified.Manifest.RootHash}").ConfigureAwait(false);
                return ExitCodes.Success;
            }
        }
    }
}
