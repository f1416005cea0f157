using System.Diagnostics;

namespace Atp.Cli.Tests;

/// <summary>
/// atp as a .NET tool: the package `dotnet pack` makes from the built CLI installs with `dotnet tool install` and runs
/// its commands, native libraries included (libsodium for Ed25519 keys, SQLite for a store audit).
/// </summary>
public sealed class PackagingTests
{
    [Fact]
    public async Task The_cli_packs_as_a_dotnet_tool_that_installs_and_runs_its_native_commands()
    {
        var work = Directory.CreateTempSubdirectory("atp-tool-").FullName;
        try
        {
            var project = Path.Combine(RepositoryRoot(), "src", "Atp.Cli", "Atp.Cli.csproj");

            // --no-build: the suite's build of the CLI is what gets packed (eng/test.sh builds Release first).
            await RunAsync("dotnet", ["pack", project, "-c", "Release", "--no-build", "-o", Path.Combine(work, "packages"), "-nologo"]);
            Assert.Single(Directory.GetFiles(Path.Combine(work, "packages"), "Atp.Cli.*.nupkg"));
            await RunAsync("dotnet", ["tool", "install", "Atp.Cli", "--tool-path", Path.Combine(work, "tools"), "--add-source", Path.Combine(work, "packages")]);
            var atp = Path.Combine(work, "tools", "atp");

            var help = await RunAsync(atp, ["--help"]);
            Assert.Contains("verify", help, StringComparison.Ordinal);

            var keys = Path.Combine(work, "keys");
            await RunAsync(atp, ["keygen", "--name", "atp.test/tool-1", "--out", keys]);
            Assert.Contains(Directory.GetFiles(keys), f => File.ReadAllText(f).StartsWith("atp.test/tool-1+", StringComparison.Ordinal));

            await using var store = await AuditedStore.CreateAsync("sqlite");
            var audit = await RunAsync(atp, ["verify", "store", .. store.VerifyArguments]);
            Assert.Contains("verified: 2 tenants, 42 entries", audit, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<string> RunAsync(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{await output}\n{await error}");
        return await output;
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Atp.slnx")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("not inside the repository");
    }
}
