using System.Diagnostics;

namespace Atp.Cli.Tests;

internal sealed record CliResult(int ExitCode, string Output, string Error);

internal static class CliRun
{
    public static Task<CliResult> InProcessAsync(params string[] args) => InProcessAsync(CliEnvironment.Process, args);

    /// <summary>Runs in-process with the given environment variables and standard input instead of the process's own.</summary>
    public static async Task<CliResult> InProcessAsync(CliEnvironment environment, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AtpCommand.InvokeAsync(args, output, error, environment, CancellationToken.None);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs the built <c>atp</c> executable as a separate process, as a user's shell would.</summary>
    public static Task<CliResult> ProcessAsync(params string[] args) => ProcessAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the built <c>atp</c> executable with extra environment variables.</summary>
    public static async Task<CliResult> ProcessAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "atp.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await output, await error);
    }
}
