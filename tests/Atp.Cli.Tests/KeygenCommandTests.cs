using Atp.Integrity;

namespace Atp.Cli.Tests;

public sealed class KeygenCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-keygen-").FullName;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Writes_an_owner_only_signing_key_and_prints_its_verifier_key()
    {
        var result = await CliRun.InProcessAsync("keygen", "--name", "atp.example.com/westeu-prod-1", "--out", _directory);

        Assert.Equal(0, result.ExitCode);
        var keyFile = Path.Combine(_directory, "atp.example.com_westeu-prod-1.key");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        using var signer = NoteSigner.Parse(await File.ReadAllTextAsync(keyFile));
        var printed = result.Output.TrimEnd().Split('\n')[^1];
        Assert.Equal(signer.Verifier.VerifierKey, printed);
        Assert.Equal(printed, (await File.ReadAllTextAsync(Path.Combine(_directory, "atp.example.com_westeu-prod-1.pub"))).TrimEnd());
        Assert.DoesNotContain("PRIVATE", result.Output);
    }

    [Fact]
    public async Task Refuses_to_overwrite_a_key_without_force()
    {
        Assert.Equal(0, (await CliRun.InProcessAsync("keygen", "--name", "k", "--out", _directory)).ExitCode);
        var first = await File.ReadAllTextAsync(Path.Combine(_directory, "k.key"));

        var again = await CliRun.InProcessAsync("keygen", "--name", "k", "--out", _directory);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--force", again.Error);
        Assert.Equal(first, await File.ReadAllTextAsync(Path.Combine(_directory, "k.key")));

        Assert.Equal(0, (await CliRun.InProcessAsync("keygen", "--name", "k", "--out", _directory, "--force")).ExitCode);
        Assert.NotEqual(first, await File.ReadAllTextAsync(Path.Combine(_directory, "k.key")));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("has+plus")]
    public async Task Rejects_invalid_key_names(string name)
    {
        var result = await CliRun.InProcessAsync("keygen", "--name", name, "--out", _directory);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("not a valid key name", result.Error);
        Assert.Empty(Directory.GetFiles(_directory));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
