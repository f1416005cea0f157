using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Atp.Core.StoreAudit;
using Atp.Integrity;
using Atp.Storage.Postgres;
using Atp.Storage.Sqlite;
using Npgsql;
using Spectre.Console;

namespace Atp.Cli.Verify;

/// <summary>
/// <c>atp verify store --data DIR | --postgres CONNSTR</c>: the self-audit of a cell's store, read-only. Recomputes every
/// leaf hash from the stored bytes and every stored node from its children, checks each tenant's tree head, and checks
/// every stored checkpoint's signature and that it is consistent with the tree (and so with the other checkpoints).
/// Each mismatch is printed with its tenant and index. Exit 0 clean, 1 a mismatch, 2 unusable input.
/// </summary>
internal static class VerifyStoreCommand
{
    public static Command Create()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "Data directory of an embedded (SQLite) cell; atp.db is opened read-only" };
        var postgres = new Option<string?>("--postgres")
        {
            Description = "Connection string of a PostgreSQL cell, as a role that sees every tenant's rows (the schema owner); put the password in PGPASSWORD or a pgpass file, not here",
        };
        var keys = new Option<string[]>("--key")
        {
            Description = "Trusted verifier key <name>+<id>+<base64> (repeatable); with --data, the keys in DIR/keys/*.key are trusted as well",
            Arity = ArgumentArity.OneOrMore,
        };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar or progress lines" };
        var command = new Command("store", "Audit a whole store: every leaf, node, tree head and checkpoint of every tenant (read-only).") { data, postgres, keys, noProgress };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(data), parse.GetValue(postgres), parse.GetValue(keys) ?? [], parse.GetValue(noProgress),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(
        DirectoryInfo? data, string? postgres, string[] keyTexts, bool noProgress, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        if ((data is null) == (postgres is null))
        {
            throw new CliInputException("give exactly one of --data DIR (an embedded cell) or --postgres CONNSTR (a PostgreSQL cell)");
        }

        var trusted = VerifyCommand.ParseKeys(keyTexts);
        if (data is not null)
        {
            trusted.AddRange(CellKeys(data));
        }

        if (trusted.Count == 0)
        {
            throw new CliInputException(data is null
                ? "no verifier key: pass the cell's key with --key (GET /v1/log/keys)"
                : $"no verifier key: {Path.Combine(data.FullName, "keys")} holds no *.key file; pass the cell's key with --key");
        }

        ILogAuditSource source;
        try
        {
            source = data is not null ? SqliteAuditSource.Open(data.FullName) : PostgresAuditSource.Open(postgres!);
        }
        catch (Exception e) when (e is FileNotFoundException or ArgumentException or Microsoft.Data.Sqlite.SqliteException)
        {
            throw new CliInputException($"cannot open the store: {e.Message}");
        }

        await using (source.ConfigureAwait(false))
        {
            var findings = 0L;
            var stopwatch = Stopwatch.StartNew();
            StoreAuditResult result;
            void Report(AuditFinding finding)
            {
                findings++;
                output.WriteLine($"mismatch: {finding}");
            }

            try
            {
                var auditor = new StoreAuditor(source, trusted);
                result = noProgress
                    ? await auditor.RunAsync(Report, null, cancellationToken).ConfigureAwait(false)
                    : IsTerminal(output)
                        ? await WithProgressBarAsync(auditor, Report, cancellationToken).ConfigureAwait(false)
                        : await auditor.RunAsync(Report, new ProgressLines(error), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
            {
                // The message names the problem (unreachable server, wrong password, no schema, RLS); never the connection string.
                throw new CliInputException($"cannot read the store: {e.Message}");
            }

            var seconds = Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-6);
            var summary = string.Create(CultureInfo.InvariantCulture,
                $"{result.Tenants} tenants, {result.Entries} entries ({result.LeafBytes / 1e6:F1} MB of leaves), {result.Checkpoints} checkpoints in {seconds:F1} s ({result.LeafBytes / 1e6 / seconds:F1} MB/s, {result.Entries / seconds:F0} entries/s)");
            if (result.IsClean)
            {
                await output.WriteLineAsync($"verified: {summary}").ConfigureAwait(false);
                return ExitCodes.Success;
            }

            await error.WriteLineAsync($"FAILED: {result.Findings} mismatches in {summary}").ConfigureAwait(false);
            return ExitCodes.VerificationFailed;
        }
    }

    // The cell's own signing keys (the embedded engine keeps them under keys/): their verifier halves are trusted.
    private static List<NoteVerifier> CellKeys(DirectoryInfo data)
    {
        var directory = Path.Combine(data.FullName, "keys");
        var verifiers = new List<NoteVerifier>();
        if (!Directory.Exists(directory))
        {
            return verifiers;
        }

        foreach (var file in Directory.EnumerateFiles(directory, "*.key").Order(StringComparer.Ordinal))
        {
            try
            {
                // keys/ also holds the cell's secret-sealing and cursor keys, which are not note signers: only C2SP
                // signer keys are the cell's signing keys.
                var text = File.ReadAllText(file, Encoding.UTF8).Trim();
                if (!text.StartsWith("PRIVATE+KEY+", StringComparison.Ordinal))
                {
                    continue;
                }

                using var signer = NoteSigner.Parse(text);
                verifiers.Add(signer.Verifier);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                throw new CliInputException($"key file '{file}' is not readable as a signing key: {e.Message}");
            }
        }

        return verifiers;
    }

    private static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    private static async Task<StoreAuditResult> WithProgressBarAsync(StoreAuditor auditor, Action<AuditFinding> report, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        StoreAuditResult? result = null;
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("verifying", maxValue: 1);
                var progress = new Progress<AuditProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.EntriesTotal);
                    task.Value = p.EntriesChecked;
                    task.Description = $"tenant {Markup.Escape(p.TenantId)}";
                });
                result = await auditor.RunAsync(report, progress, cancellationToken).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);
        return result!;
    }

    /// <summary>Plain progress lines (not a terminal): one per tenant finished and at most one every two seconds otherwise.</summary>
    private sealed class ProgressLines(TextWriter error) : IProgress<AuditProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private string? _tenant;

        public void Report(AuditProgress value)
        {
            if (value.TenantId == _tenant && _since.Elapsed < TimeSpan.FromSeconds(2) && value.EntriesChecked < value.EntriesTotal)
            {
                return;
            }

            _tenant = value.TenantId;
            _since.Restart();
            var percent = value.EntriesTotal == 0 ? 100 : 100.0 * value.EntriesChecked / value.EntriesTotal;
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"progress: {value.EntriesChecked}/{value.EntriesTotal} entries ({percent:F0}%), tenant {value.TenantId}"));
        }
    }
}
