using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// Issue 17 end to end over real processes: a cell ingests, stops, <c>atp export --data</c> writes a bundle (and
/// later the running cell's export API writes the next one),
/// <c>atp verify bundle</c> checks it in a fresh directory, <c>atp import</c> loads it into a new data directory, and
/// the offline cell started on it answers as the source did: checkpoints, roots, proofs and search; ingest is refused
/// (409 read-only-replica); a second day's bundle imports on top; a forked log's bundle is refused.
/// </summary>
public sealed class OfflineCellTests : IDisposable
{
    private const string Tenant = "acme";
    private readonly string _work = Directory.CreateTempSubdirectory("atp-offline-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task An_offline_cell_imported_from_bundles_answers_as_the_source_and_refuses_ingest_and_forks()
    {
        var source = Path.Combine(_work, "source");
        var offline = Path.Combine(_work, "offline");
        var adminKey = ApiKeyFormat.Generate();
        string sourceKey;
        string readKey;

        // Day 1: 50 events, then the cell stops and its data directory is exported.
        await using (var cell = await ChildServer.StartAsync(source, adminKey))
        {
            using var admin = CrashTests.Client(cell.BaseAddress, adminKey);
            sourceKey = (await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = Tenant, name = Tenant })).StatusCode);
            readKey = await CreateKeyAsync(admin);
            await IngestAsync(cell.BaseAddress, readKey, 50, "day1");
            await cell.StopAsync();
        }

        var day1 = Path.Combine(_work, "day1.tar");
        await AssertAtpAsync(0, "wrote", "export", "--data", source, "--tenant", Tenant, "--out", day1);

        // Verified in a fresh directory that holds nothing but the bundle.
        var fresh = Directory.CreateDirectory(Path.Combine(_work, "fresh")).FullName;
        File.Copy(day1, Path.Combine(fresh, "day1.tar"));
        await AssertAtpAsync(0, "entries [0, 50)", "verify", "bundle", Path.Combine(fresh, "day1.tar"), "--key", sourceKey);
        await AssertAtpAsync(0, "imported 50 entries", "import", Path.Combine(fresh, "day1.tar"), "--data", offline, "--key", sourceKey);
        await AssertAtpAsync(0, "nothing to import", "import", Path.Combine(fresh, "day1.tar"), "--data", offline, "--key", sourceKey);

        // Day 2: 30 more events at the source; the bundle from 50 carries the consistency proof from day 1.
        SourceAnswers answers;
        // Day 1's bundle came from `atp export` of the stopped cell's data directory; day 2's comes from the running
        // cell's export API, and the cell stops afterwards.
        var day2 = Path.Combine(_work, "day2.tar");
        await using (var cell = await ChildServer.StartAsync(source, adminKey))
        {
            await IngestAsync(cell.BaseAddress, readKey, 30, "day2");
            answers = await ReadAnswersAsync(cell.BaseAddress, readKey, 80);
            using var admin = CrashTests.Client(cell.BaseAddress, adminKey);
            await File.WriteAllBytesAsync(day2, await ExportThroughApiAsync(admin, fromIndex: 50));
            await cell.StopAsync();
        }

        await AssertAtpAsync(0, "previous: consistent with the checkpoint of size 50", "verify", "bundle", day2, "--key", sourceKey, "--previous", day1);

        // A bundle of a forked log (another cell's acme, same origin, 90 entries) is refused and stores nothing.
        var forkDirectory = Path.Combine(_work, "fork");
        string forkKey;
        await using (var fork = await ChildServer.StartAsync(forkDirectory, adminKey))
        {
            using var admin = CrashTests.Client(fork.BaseAddress, adminKey);
            forkKey = (await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = Tenant, name = Tenant })).StatusCode);
            await IngestAsync(fork.BaseAddress, await CreateKeyAsync(admin), 90, "fork");
            await fork.StopAsync();
        }

        var forked = Path.Combine(_work, "fork.tar");
        await AssertAtpAsync(0, "wrote", "export", "--data", forkDirectory, "--tenant", Tenant, "--out", forked);
        await AssertAtpAsync(1, "REFUSED: fork", "import", forked, "--data", offline, "--key", forkKey);
        await AssertAtpAsync(1, "FAILED: manifest.sig", "import", forked, "--data", offline, "--key", sourceKey);

        // Day 2 imports on top of day 1 (a gap would be refused: day 2 before day 1 into a new directory).
        await AssertAtpAsync(1, "REFUSED: the bundle starts at index 50", "import", day2, "--data", Path.Combine(_work, "other"), "--key", sourceKey);
        await AssertAtpAsync(0, "imported 30 entries", "import", day2, "--data", offline, "--key", sourceKey);

        var offlineAdmin = ApiKeyFormat.Generate();
        await using (var cell = await ChildServer.StartAsync(offline, offlineAdmin, ["--Atp:Origin=atp.test/offline-cell-1"]))
        {
            using var admin = CrashTests.Client(cell.BaseAddress, offlineAdmin);
            using var reader = CrashTests.Client(cell.BaseAddress, await CreateKeyAsync(admin));
            var replica = await ReadAnswersAsync(cell.BaseAddress, reader.DefaultRequestHeaders.Authorization!.Parameter!, 80);

            Assert.Equal(answers.Checkpoint, replica.Checkpoint);
            Assert.Equal(answers.Inclusion, replica.Inclusion);
            Assert.Equal(answers.Consistency, replica.Consistency);
            Assert.Equal(answers.Entry, replica.Entry);
            Assert.Equal(answers.Search, replica.Search);

            var ingest = await reader.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(ServerFixture.Event()));
            Assert.Equal(HttpStatusCode.Conflict, ingest.StatusCode);
            Assert.Equal("https://atp.dev/problems/read-only-replica", (await ingest.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());

            // Nor can a platform admin make it writable: a status change of a replica is refused and changes nothing.
            var reactivate = await admin.PatchAsJsonAsync($"/v1/tenants/{Tenant}", new { status = "active" });
            Assert.Equal(HttpStatusCode.Conflict, reactivate.StatusCode);
            Assert.Equal("replica", (await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}")).GetProperty("status").GetString());

            var keys = await reader.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/log/keys");
            var key = Assert.Single(keys.GetProperty("keys").EnumerateArray());
            Assert.Equal((sourceKey, "source"), (key.GetProperty("verifierKey").GetString(), key.GetProperty("status").GetString()));

            // The offline cell's sealer never signs the replica: the checkpoint is still the source's after a few intervals.
            await Task.Delay(300);
            Assert.Equal(answers.Checkpoint, await reader.GetStringAsync($"/v1/tenants/{Tenant}/log/checkpoint"));
            await cell.StopAsync();
        }
    }

    private static async Task<byte[]> ExportThroughApiAsync(HttpClient admin, ulong fromIndex)
    {
        var key = await admin.PostAsJsonAsync($"/v1/tenants/{Tenant}/api-keys", new { name = "auditor", scopes = new[] { "events:read", "exports:create" } });
        Assert.Equal(HttpStatusCode.Created, key.StatusCode);
        using var auditor = CrashTests.Client(admin.BaseAddress!, (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!);
        var id = (await ExportTests.CreateAsync(auditor, Tenant, new { format = "ndjson", fromIndex })).GetProperty("id").GetString()!;
        await ExportTests.WaitForStateAsync(auditor, Tenant, id, "succeeded");
        return await ExportTests.DownloadAsync(auditor, Tenant, id);
    }

    internal static async Task<string> CreateKeyAsync(HttpClient admin)
    {
        var key = await admin.PostAsJsonAsync($"/v1/tenants/{Tenant}/api-keys", new { name = "offline-test", scopes = new[] { "events:write", "events:read" } });
        Assert.Equal(HttpStatusCode.Created, key.StatusCode);
        return (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    private static async Task IngestAsync(Uri baseAddress, string key, int count, string day)
    {
        using var client = CrashTests.Client(baseAddress, key);
        var response = await client.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(ServerFixture.Batch(count, i => ServerFixture.Event(action: i % 3 == 0 ? $"billing.{day}" : "document.update", actor: $"{day}-{i}"))));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var head = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/projection");
        await ServerFixture.WaitForCheckpointAsync(client, Tenant, head.GetProperty("treeSize").GetUInt64());
    }

    private static async Task<SourceAnswers> ReadAnswersAsync(Uri baseAddress, string key, ulong size)
    {
        using var client = CrashTests.Client(baseAddress, key);
        var checkpoint = await ServerFixture.WaitForCheckpointAsync(client, Tenant, size);
        await ServerFixture.WaitForProjectionAsync(client, Tenant);
        var inclusion = await client.GetStringAsync($"/v1/tenants/{Tenant}/log/proof/inclusion?index=17&size={size}");
        var consistency = await client.GetStringAsync($"/v1/tenants/{Tenant}/log/proof/consistency?from=50&to={size}");
        var entry = await client.GetByteArrayAsync($"/v1/tenants/{Tenant}/log/entries/63");
        var search = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?action=billing.*&limit=100");
        var found = string.Join(',', search.GetProperty("items").EnumerateArray().Select(i => $"{i.GetProperty("index")}:{i.GetProperty("event").GetProperty("id")}"));
        Assert.NotEmpty(found);
        return new SourceAnswers(checkpoint, inclusion, consistency, Convert.ToBase64String(entry), found);
    }

    internal static async Task AssertAtpAsync(int exitCode, string expected, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(AtpBinary());
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        var text = await output + await error;
        Assert.True(process.ExitCode == exitCode, $"atp {string.Join(' ', args)}: exit {process.ExitCode}\n{text}");
        Assert.Contains(expected, text, StringComparison.Ordinal);
    }

    // The atp binary from its own build output: export and import open the embedded store, whose dependencies
    // (Microsoft.Extensions.Options) the test output resolves from ASP.NET Core's shared framework, which atp does not use.
    internal static string AtpBinary()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Atp.slnx")))
        {
            directory = directory.Parent;
        }

        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<configuration>/<tfm>/
        var path = Path.Combine(directory!.FullName, "src", "Atp.Cli", "bin", configuration, "net10.0", "atp.dll");
        Assert.True(File.Exists(path), $"{path} is not built");
        return path;
    }

    private sealed record SourceAnswers(string Checkpoint, string Inclusion, string Consistency, string Entry, string Search);
}
