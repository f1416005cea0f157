using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary>
/// What a skeptical auditor does, trusting nothing but the published verifier key: download every entry's bytes,
/// recompute the Merkle root with an independent implementation (plain SHA-256 and the RFC 9162 definition, none of
/// ATP's tree code), compare it with the signed checkpoint, and check proofs with the <c>atp verify</c> command.
/// </summary>
public sealed class AuditorTests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private HttpClient _client = null!;
    private string _work = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
        _client = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("audited"));
        _work = Directory.CreateTempSubdirectory("atp-auditor-").FullName;
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task An_auditor_recomputes_the_root_and_verifies_proofs_with_atp_verify()
    {
        var random = new Random(5);
        await IngestAsync(random, 123);
        var oldNote = await ServerFixture.WaitForCheckpointAsync(_client, "audited", 123);
        await IngestAsync(random, 211);
        var newNote = await ServerFixture.WaitForCheckpointAsync(_client, "audited", 334);
        var verifierKey = (await _server.Client.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
        var (newSize, newRoot) = ReadCheckpointBody(newNote);
        Assert.Equal(334, newSize);

        // 1. Every entry's bytes, and the root recomputed from them alone.
        var leaves = new List<byte[]>();
        for (var i = 0; i < newSize; i++)
        {
            leaves.Add(await _client.GetByteArrayAsync($"/v1/tenants/audited/log/entries/{i}"));
        }

        Assert.Equal(newRoot, Convert.ToBase64String(IndependentRoot(leaves)));
        Assert.Equal(ReadCheckpointBody(oldNote).Root, Convert.ToBase64String(IndependentRoot(leaves.Take(123).ToList())));

        // 2. The checkpoint's signature, with the atp command.
        var newFile = Write("new-checkpoint.txt", newNote);
        var oldFile = Write("old-checkpoint.txt", oldNote);
        var checkpoint = await AtpAsync("verify", "checkpoint", newFile, "--key", verifierKey, "--origin", "atp.test/test-cell-1/audited");
        Assert.True(checkpoint.ExitCode == 0, checkpoint.Error);
        Assert.Contains($"at tree size 334, root {newRoot}", checkpoint.Output, StringComparison.Ordinal);

        // 3. Inclusion of a sample of entries in the new checkpoint.
        foreach (var index in new[] { 0, 1, 122, 123, 200, 333 })
        {
            var leafFile = Write($"leaf-{index}.json", leaves[index]);
            var proofFile = Write($"inclusion-{index}.json", await _client.GetStringAsync($"/v1/tenants/audited/log/proof/inclusion?index={index}&size=334"));
            var inclusion = await AtpAsync("verify", "inclusion", "--checkpoint", newFile, "--key", verifierKey, "--leaf", leafFile, "--proof", proofFile);
            Assert.True(inclusion.ExitCode == 0, inclusion.Error);
        }

        // 4. The new tree extends the old one.
        var consistencyFile = Write("consistency.json", await _client.GetStringAsync("/v1/tenants/audited/log/proof/consistency?from=123&to=334"));
        var consistency = await AtpAsync("verify", "consistency", "--old", oldFile, "--new", newFile, "--key", verifierKey, "--proof", consistencyFile);
        Assert.True(consistency.ExitCode == 0, consistency.Error);

        // 5. And the auditor notices a single altered byte.
        var altered = (byte[])leaves[200].Clone();
        altered[10] ^= 0x20;
        var tampered = await AtpAsync("verify", "inclusion", "--checkpoint", newFile, "--key", verifierKey, "--leaf", Write("altered.json", altered), "--proof", Path.Combine(_work, "inclusion-200.json"));
        Assert.Equal(1, tampered.ExitCode);
        Assert.StartsWith("FAILED:", tampered.Error, StringComparison.Ordinal);
    }

    private async Task IngestAsync(Random random, int count)
    {
        var sent = 0;
        while (sent < count)
        {
            var batch = Math.Min(count - sent, random.Next(1, 40));
            var response = await _client.PostAsync("/v1/tenants/audited/events", ServerFixture.Json(ServerFixture.Batch(batch, i => ServerFixture.Event(actor: $"u{sent + i}"))));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            sent += batch;
        }
    }

    // RFC 9162 §2.1.1, written from the definition: MTH of a list splits at the largest power of two below its length.
    private static byte[] IndependentRoot(List<byte[]> leaves)
    {
        if (leaves.Count == 0)
        {
            return SHA256.HashData([]);
        }

        if (leaves.Count == 1)
        {
            return SHA256.HashData([0x00, .. leaves[0]]);
        }

        var k = 1;
        while (k * 2 < leaves.Count)
        {
            k *= 2;
        }

        return SHA256.HashData([0x01, .. IndependentRoot(leaves[..k]), .. IndependentRoot(leaves[k..])]);
    }

    private static (int Size, string Root) ReadCheckpointBody(string note)
    {
        var lines = note.Split('\n');
        return (int.Parse(lines[1], System.Globalization.CultureInfo.InvariantCulture), lines[2]);
    }

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_work, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static Task<(int ExitCode, string Output, string Error)> AtpAsync(params string[] args) => AtpAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the real atp binary with extra environment variables.</summary>
    internal static async Task<(int ExitCode, string Output, string Error)> AtpAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
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
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await output, await error);
    }
}
