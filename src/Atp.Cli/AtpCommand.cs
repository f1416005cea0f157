using System.CommandLine;
using Atp.Cli.Admin;
using Atp.Cli.Export;
using Atp.Cli.Erasures;
using Atp.Cli.Holds;
using Atp.Cli.Import;
using Atp.Cli.Keys;
using Atp.Cli.Mirror;
using Atp.Cli.Requests;
using Atp.Cli.Subjects;
using Atp.Cli.Verify;

namespace Atp.Cli;

/// <summary>The root of the <c>atp</c> command tree.</summary>
internal static class AtpCommand
{
    public static RootCommand Create(CliEnvironment environment)
    {
        var root = new RootCommand("ATP (Audit Trail Platform) command line: offline verification, key management and signed API requests.");
        root.Subcommands.Add(KeygenCommand.Create());
        root.Subcommands.Add(VerifyCommand.Create());
        root.Subcommands.Add(AdminCommand.Create(environment));
        root.Subcommands.Add(RequestCommand.Create(environment));
        root.Subcommands.Add(MirrorCommand.Create(environment));
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(ImportCommand.Create());
        root.Subcommands.Add(SubjectsCommand.Create(environment));
        root.Subcommands.Add(HoldsCommand.Create(environment));
        root.Subcommands.Add(ErasuresCommand.Create(environment));
        return root;
    }

    /// <summary>Parses and runs; usage errors exit with 2 (System.CommandLine's default would be 1, our "verification failed").</summary>
    public static Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken) =>
        InvokeAsync(args, output, error, CliEnvironment.Process, cancellationToken);

    /// <inheritdoc cref="InvokeAsync(string[], TextWriter, TextWriter, CancellationToken)"/>
    public static async Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, CliEnvironment environment, CancellationToken cancellationToken)
    {
        var parse = Create(environment).Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors)
            {
                await error.WriteLineAsync($"atp: {problem.Message}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run 'atp --help' (or 'atp <command> --help') for usage.").ConfigureAwait(false);
            return ExitCodes.BadInput;
        }

        try
        {
            var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
            return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (CliInputException e)
        {
            await error.WriteLineAsync($"atp: {e.Message}").ConfigureAwait(false);
            return ExitCodes.BadInput;
        }
    }
}
