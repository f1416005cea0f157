using System.CommandLine;
using Atp.Core.Storage;

namespace Atp.Cli.Admin;

/// <summary>
/// <c>atp admin accept-rollback --data DIR --tenant T</c>: an operator's decision that the tenant's log, rolled back by a
/// restore of an older backup, is to be served and signed for again. Written to the data directory's published-head
/// record; the server applies it at its next start — re-bases the record on the stored head and records
/// <c>log.rollback-accepted</c> in the platform audit log — and only then lifts the tenant's quarantine.
/// </summary>
internal static class AcceptRollbackCommand
{
    public static Command Create(CliEnvironment environment)
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "The cell's data directory (where atp-published-heads is kept)", Required = true };
        var tenant = new Option<string>("--tenant") { Description = "The tenant whose rolled-back log is accepted", Required = true };
        var command = new Command("accept-rollback", "Accept a tenant's log rolled back by a restore; applied and recorded in the platform audit log at the server's next start.") { data, tenant };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(data)!, parse.GetValue(tenant)!, environment, parse.InvocationConfiguration.Output));
        return command;
    }

    private static async Task<int> RunAsync(DirectoryInfo data, string tenant, CliEnvironment environment, TextWriter output)
    {
        if (!File.Exists(PublishedHeads.PathOf(data.FullName)))
        {
            throw new CliInputException($"'{data.FullName}' holds no {PublishedHeads.FileName}: this cell never published a checkpoint there, so there is no rollback to accept");
        }

        using var heads = PublishedHeads.Read(data.FullName);
        if (heads.Find(tenant) is not { } published)
        {
            throw new CliInputException($"no checkpoint of tenant '{tenant}' is recorded as published in '{data.FullName}'; nothing to accept");
        }

        try
        {
            PublishedHeads.Accept(data.FullName, tenant, environment.Clock.GetUtcNow());
        }
        catch (ArgumentException e)
        {
            throw new CliInputException($"'{tenant}' is not a tenant id: {e.Message}");
        }

        await output.WriteLineAsync($"accepted the rollback of tenant '{tenant}' (last published size {published.Size}); start the server: it re-bases the tenant on its stored log and records log.rollback-accepted in the platform audit log").ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
