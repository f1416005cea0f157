using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Atp.Server.Tests;

/// <summary><c>atp mirror</c> as a separate process against a real server: verified, incremental, resumable, fork-refusing.</summary>
public sealed partial class MirrorTests : IAsyncLifetime
{
    private readonly List<ServerFixture> _servers = [];
    private string _work = null!;

    public Task InitializeAsync()
    {
        _work = Directory.CreateTempSubdirectory("atp-mirror-").FullName;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task Mirrors_verifies_resumes_and_grows_incrementally()
    {
        var (server, key) = await ServerWithLogAsync(600, "user");
        var dir = Path.Combine(_work, "mirror");

        var first = await MirrorAsync(server, key, dir);
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Contains("at tree size 600", first.Output, StringComparison.Ordinal);
        Assert.Contains("trusting the server's published verifier keys on first use", first.Error, StringComparison.Ordinal);
        Assert.Equal(7, Downloaded(first));

        // The directory is the tlog-tiles layout, byte for byte what the server serves.
        using var client = server.ClientWithKey(key);
        foreach (var path in new[] { "tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2", "tile/entries/000", "tile/entries/001", "tile/entries/002.p/88" })
        {
            Assert.Equal(await client.GetByteArrayAsync("/v1/tenants/acme/log/" + path), await File.ReadAllBytesAsync(Path.Combine(dir, path)));
        }

        Assert.Equal(await client.GetStringAsync("/v1/tenants/acme/log/checkpoint"), await File.ReadAllTextAsync(Path.Combine(dir, "checkpoint")));

        var again = await MirrorAsync(server, key, dir);
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Equal(0, Downloaded(again));
        Assert.Contains("unchanged", again.Output, StringComparison.Ordinal);

        // An interrupted run: a file missing, one damaged, a temporary file left behind. Only those two are fetched again.
        File.Delete(Path.Combine(dir, "tile/entries/001"));
        var damaged = Path.Combine(dir, "tile/0/000");
        var bytes = await File.ReadAllBytesAsync(damaged);
        bytes[100] ^= 1;
        await File.WriteAllBytesAsync(damaged, bytes);
        await File.WriteAllBytesAsync(Path.Combine(dir, "tile/entries/000.tmp"), [1, 2, 3]);
        var resumed = await MirrorAsync(server, key, dir);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal(2, Downloaded(resumed));
        Assert.Contains("1 local files replaced", resumed.Output, StringComparison.Ordinal);
        Assert.Equal(await client.GetByteArrayAsync("/v1/tenants/acme/log/tile/0/000"), await File.ReadAllBytesAsync(damaged));

        // The log grows: only the new and changed tiles come down, and the old checkpoint is checked against the new tree.
        await TilesApiTests.AppendAsync(server, "acme", 300);
        await ServerFixture.WaitForCheckpointAsync(client, "acme", 900);
        var grown = await MirrorAsync(server, key, dir);
        Assert.True(grown.ExitCode == 0, grown.Error);
        Assert.Contains("at tree size 900", grown.Output, StringComparison.Ordinal);
        Assert.Contains("consistent with the previous tree size 600", grown.Output, StringComparison.Ordinal);
        Assert.Equal(5, Downloaded(grown));
        Assert.True(File.Exists(Path.Combine(dir, "tile/entries/003.p/132")));
    }

    [Fact]
    public async Task A_mirror_killed_mid_way_resumes_without_downloading_again_what_it_kept()
    {
        var (server, key) = await ServerWithLogAsync(20_000, "user");
        var dir = Path.Combine(_work, "mirror");
        using (var admin = server.Admin)
        {
            // The first ~110 tiles come at once (one full read-cost bucket), then one a second, waited out on 429s:
            // the run is killed part-way.
            Assert.Equal(System.Net.HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { readCostPerSecond = 1 } })).StatusCode);
        }

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["ATP_API_KEY"] = key;
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "atp.dll"), "mirror", "--url", server.BaseAddress.ToString(), "--tenant", "acme", "--out", dir })
        {
            start.ArgumentList.Add(arg);
        }

        var bundles = Path.Combine(dir, "tile", "entries");
        using (var process = Process.Start(start)!)
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(Directory.Exists(bundles) && Directory.GetFiles(bundles).Length >= 10))
            {
                Assert.False(process.HasExited, "the mirror finished before it could be interrupted");
                Assert.True(DateTime.UtcNow < deadline, "the mirror wrote no bundles within 60 s");
                await Task.Delay(50);
            }

            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        var kept = Directory.GetFiles(bundles).Count(f => !f.EndsWith(".tmp", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(dir, "checkpoint")));
        using (var admin = server.Admin)
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, (await admin.PatchAsync("/v1/tenants/acme", ServerFixture.Json("{\"limits\":{\"readCostPerSecond\":null}}"))).StatusCode);
        }

        var resumed = await MirrorAsync(server, key, dir);

        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("at tree size 20000", resumed.Output, StringComparison.Ordinal);
        var total = 79 + 79 + 1; // level-0 tiles and bundles (78 full, one of width 32), and the level-1 tile of width 78
        Assert.True(Downloaded(resumed) <= total - kept, resumed.Output);
        Assert.Equal(78, Directory.GetFiles(bundles).Count(f => !f.EndsWith(".tmp", StringComparison.Ordinal)));
        Assert.True(File.Exists(Path.Combine(bundles, "078.p", "32")));
    }

    [Fact]
    public async Task A_forked_or_shrunk_log_or_an_untrusted_signature_is_refused_with_exit_1()
    {
        var (original, originalKey) = await ServerWithLogAsync(600, "user");
        var (fork, forkKey) = await ServerWithLogAsync(900, "intruder");
        var dir = Path.Combine(_work, "mirror");
        Assert.Equal(0, (await MirrorAsync(original, originalKey, dir, "--verifier-key", await VerifierKeyAsync(original))).ExitCode);
        var checkpoint = await File.ReadAllTextAsync(Path.Combine(dir, "checkpoint"));

        // Same origin, validly signed by its own cell, but its first 600 entries differ: a fork.
        var forked = await MirrorAsync(fork, forkKey, dir, "--verifier-key", await VerifierKeyAsync(fork));
        Assert.Equal(1, forked.ExitCode);
        Assert.Contains("not consistent with the checkpoint mirrored last time (tree size 600", forked.Error, StringComparison.Ordinal);
        Assert.Equal(checkpoint, await File.ReadAllTextAsync(Path.Combine(dir, "checkpoint")));
        Assert.False(File.Exists(Path.Combine(dir, "tile/0/003.p/132")));
        Assert.False(File.Exists(Path.Combine(dir, "tile/1/000.p/3")));

        // The original still mirrors into the same directory afterwards.
        Assert.Equal(0, (await MirrorAsync(original, originalKey, dir, "--verifier-key", await VerifierKeyAsync(original))).ExitCode);

        var bigger = Path.Combine(_work, "bigger");
        Assert.Equal(0, (await MirrorAsync(fork, forkKey, bigger, "--verifier-key", await VerifierKeyAsync(fork))).ExitCode);
        var shrunk = await MirrorAsync(original, originalKey, bigger, "--verifier-key", await VerifierKeyAsync(original));
        Assert.Equal(1, shrunk.ExitCode);
        Assert.Contains("the log shrank", shrunk.Error, StringComparison.Ordinal);

        // The pinned (first-use) key of one cell does not accept the other cell's checkpoint.
        var pinned = Path.Combine(_work, "pinned");
        Assert.Equal(0, (await MirrorAsync(original, originalKey, pinned)).ExitCode);
        var untrusted = await MirrorAsync(fork, forkKey, pinned);
        Assert.Equal(1, untrusted.ExitCode);
        Assert.Contains("checkpoint does not verify", untrusted.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tiles_that_do_not_match_the_signed_checkpoint_are_refused_with_exit_1()
    {
        var (server, key) = await ServerWithLogAsync(600, "user");

        // A stored leaf hash altered behind the server's back: level-0 tile 000 no longer hashes to its level-1 entry.
        await new StoreTamper(server.DataDirectory, server.StorageArguments).FlipAsync("leaf_hash", "acme", 5, 0);
        await server.RestartAsync();
        var dir = Path.Combine(_work, "mirror");

        var refused = await MirrorAsync(server, key, dir);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("FAILED: tile/0/000 does not hash to its entry in the tile above", refused.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "checkpoint")));
        Assert.False(File.Exists(Path.Combine(dir, "tile", "0", "000")));
    }

    [Fact]
    public async Task Unusable_input_exits_2()
    {
        var (server, key) = await ServerWithLogAsync(3, "user");
        var dir = Path.Combine(_work, "mirror");

        var noKey = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "mirror", "--url", server.BaseAddress.ToString(), "--tenant", "acme", "--out", dir);
        Assert.Equal(2, noKey.ExitCode);
        Assert.Contains("no API key", noKey.Error, StringComparison.Ordinal);

        var wrongKey = await AuditorTests.AtpAsync(new Dictionary<string, string> { ["ATP_API_KEY"] = key + "x" }, "mirror", "--url", server.BaseAddress.ToString(), "--tenant", "acme", "--out", dir);
        Assert.Equal(2, wrongKey.ExitCode);
        Assert.Contains("401", wrongKey.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(key, wrongKey.Error, StringComparison.Ordinal);
    }

    private async Task<(ServerFixture Server, string Key)> ServerWithLogAsync(int size, string actor)
    {
        var server = await ServerFixture.StartAsync();
        _servers.Add(server);
        var key = await server.CreateTenantWithKeyAsync("acme");
        await TilesApiTests.AppendAsync(server, "acme", size, actor);
        using var client = server.ClientWithKey(key);
        await ServerFixture.WaitForCheckpointAsync(client, "acme", (ulong)size);
        return (server, key);
    }

    private static async Task<string> VerifierKeyAsync(ServerFixture server)
    {
        var keys = await server.Client.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        return keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
    }

    [Fact]
    public async Task The_api_key_comes_from_a_file_or_the_environment_never_from_an_argument()
    {
        var (server, key) = await ServerWithLogAsync(3, "user");
        var keyFile = Path.Combine(_work, "reader.key");
        await File.WriteAllTextAsync(keyFile, key + "\n");
        string[] mirror = ["mirror", "--url", server.BaseAddress.ToString(), "--tenant", "acme", "--out", Path.Combine(_work, "from-file")];

        var fromFile = await AuditorTests.AtpAsync(new Dictionary<string, string>(), [.. mirror, "--key-file", keyFile]);
        Assert.True(fromFile.ExitCode == 0, fromFile.Error);
        Assert.Contains("at tree size 3", fromFile.Output, StringComparison.Ordinal);

        var missing = await AuditorTests.AtpAsync(new Dictionary<string, string>(), [.. mirror, "--key-file", keyFile + ".missing"]);
        Assert.Equal(2, missing.ExitCode);
        var asArgument = await AuditorTests.AtpAsync(new Dictionary<string, string>(), [.. mirror, "--key", key]);
        Assert.Equal(2, asArgument.ExitCode);
        Assert.Contains("Unrecognized", asArgument.Error, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output, string Error)> MirrorAsync(ServerFixture server, string key, string dir, params string[] extra) =>
        await AuditorTests.AtpAsync(
            new Dictionary<string, string> { ["ATP_API_KEY"] = key },
            ["mirror", "--url", server.BaseAddress.ToString(), "--tenant", "acme", "--out", dir, .. extra]);

    private static int Downloaded((int ExitCode, string Output, string Error) run)
    {
        var match = DownloadedCount().Match(run.Output + run.Error);
        Assert.True(match.Success, run.Output + run.Error);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"(\d+) tiles downloaded")]
    private static partial Regex DownloadedCount();
}
