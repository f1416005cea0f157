using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Atp.Core.Export;
using Atp.Integrity;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Cli.Export;

/// <summary>
/// <c>atp export --data DIR --tenant T --out FILE [--from N] [--previous-size M]</c>: writes a complete export bundle of
/// a stopped embedded cell's tenant log, [N, latest checkpoint), signed with the cell's key from DIR/keys. Exit 0
/// written, 2 unusable input (no such tenant, no checkpoint, no key).
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "Data directory of a stopped embedded (SQLite) cell", Required = true };
        var tenant = new Option<string>("--tenant") { Description = "Tenant whose log is exported", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Bundle file to write (.tar)", Required = true };
        var from = new Option<ulong>("--from") { Description = "First index (default 0); the bundle ends at the latest signed checkpoint" };
        var previousSize = new Option<ulong?>("--previous-size")
        {
            Description = "Tree size of the previous bundle's checkpoint, for the consistency proof (default: --from when it is not 0)",
        };
        var command = new Command("export", "Write a signed export bundle of a tenant's log from a stopped embedded cell (offline).") { data, tenant, output, from, previousSize };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(data)!, parse.GetValue(tenant)!, parse.GetValue(output)!, parse.GetValue(from), parse.GetValue(previousSize),
            parse.InvocationConfiguration.Output, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(DirectoryInfo data, string tenantId, FileInfo output, ulong from, ulong? previousSize, TextWriter console, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(data.FullName, "atp.db")))
        {
            throw new CliInputException($"'{data.FullName}' holds no embedded cell (no atp.db)");
        }

        var keyPath = Path.Combine(data.FullName, "keys", "cell-signing.keyring.json");
        NoteSigner signer;
        try
        {
            keyPath = PrimaryKeyPath(data.FullName);
            signer = NoteSigner.Parse(File.ReadAllText(keyPath, Encoding.UTF8).Trim());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new CliInputException($"cannot read the cell signing key '{keyPath}': {e.Message}");
        }

        using (signer)
        {
            var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = data.FullName }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
            await using (store.ConfigureAwait(false))
            {
                if (await store.GetTenantAsync(tenantId, cancellationToken).ConfigureAwait(false) is null)
                {
                    throw new CliInputException($"the cell has no tenant '{tenantId}'");
                }

                var writer = new BundleWriter(store, TimeProvider.System);
                var previous = previousSize ?? (from > 0 ? from : null);
                BundlePlan? plan;
                try
                {
                    plan = await writer.PlanCompleteAsync(tenantId, from, null, previous, null, cancellationToken).ConfigureAwait(false);
                }
                catch (ArgumentException e)
                {
                    throw new CliInputException($"--from {from} / --previous-size {previous}: {e.Message}");
                }

                if (plan is null)
                {
                    throw new CliInputException($"tenant '{tenantId}' has no signed checkpoint at or beyond index {from} yet");
                }

                // Staged beside the output, so a rerun after a crash keeps the entries files already written.
                var staging = Directory.CreateDirectory(output.FullName + ".staging").FullName;
                var manifest = await writer.WriteAsync(plan, staging, signer, output.FullName, cancellationToken).ConfigureAwait(false);
                Directory.Delete(staging, recursive: true);
                await console.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {output.FullName}: tenant {manifest.Tenant} ({manifest.Origin}), entries [{manifest.From}, {manifest.To}) in {manifest.Files.Count} files, checkpoint of size {manifest.TreeSize} root {manifest.RootHash}")).ConfigureAwait(false);
                await console.WriteLineAsync($"signed by {signer.Verifier.VerifierKey}").ConfigureAwait(false);
                return ExitCodes.Success;
            }
        }
    }

    // The key the server signs bundle manifests with: after a rotation the keyring names it (the retiring key during the
    // overlap, which every verifier already trusts, else the active one); before any rotation, the one key file.
    private static string PrimaryKeyPath(string dataDirectory)
    {
        var keys = Path.Combine(dataDirectory, "keys");
        var keyring = Path.Combine(keys, "cell-signing.keyring.json");
        if (!File.Exists(keyring))
        {
            return Path.Combine(keys, "cell-signing.key");
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(keyring));
        var entries = document.RootElement.GetProperty("keys").EnumerateArray().ToList();
        var primary = entries.FirstOrDefault(k => k.GetProperty("status").GetString() == "retiring");
        if (primary.ValueKind == JsonValueKind.Undefined)
        {
            primary = entries.FirstOrDefault(k => k.GetProperty("status").GetString() == "active");
        }

        var file = primary.ValueKind == JsonValueKind.Object ? primary.GetProperty("file").GetString() : null;
        return file is not null && Path.GetFileName(file) == file
            ? Path.Combine(keys, file)
            : throw new InvalidOperationException($"the keyring {keyring} names no active or retiring key file");
    }
}
