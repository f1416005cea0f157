namespace Atp.Cli;

/// <summary>
/// What a command takes from the process besides its arguments: environment variables (where credentials live, never
/// on the command line), standard input, and the clock. Tests pass their own, so no test mutates the process.
/// </summary>
internal sealed record CliEnvironment(Func<string, string?> Variable, Func<Stream> OpenStandardInput, TimeProvider Clock)
{
    public static CliEnvironment Process { get; } = new(Environment.GetEnvironmentVariable, Console.OpenStandardInput, TimeProvider.System);
}
