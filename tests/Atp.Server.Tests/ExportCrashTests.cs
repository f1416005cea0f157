using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>An export job survives a SIGKILL of the server process and resumes where it was, not from zero.</summary>
public sealed class ExportCrashTests
{
    private const int Events = 200_000; // four entries files of at most 65,536: the kill lands while the job runs

    [Fact]
    public async Task A_SIGKILL_during_a_big_ndjson_export_is_followed_by_a_resumed_job_whose_bundle_verifies()
    {
        var directory = Directory.CreateTempSubdirectory("atp-export-crash-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        try
        {
            var arguments = (await TestStorage.NewStoreArgumentsAsync()).Concat(["--Atp:Export:SweepInterval=00:00:00.200"]).ToList();
            var exportDirectory = arguments.FirstOrDefault(a => a.StartsWith("--Atp:Export:Directory=", StringComparison.Ordinal))?.Split('=', 2)[1]
                ?? Path.Combine(directory, "exports");
            string id;
            string key;
            await using (var server = await ChildServer.StartAsync(directory, adminKey, arguments))
            {
                using var admin = Client(server.BaseAddress, adminKey);
                Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "acme", name = "Acme" })).StatusCode);
                var created = await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "export", scopes = ExportTests.ExportScopes });
                key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                using var acme = Client(server.BaseAddress, key);
                for (var done = 0; done < Events; done += 1000)
                {
                    var response = await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1000, i => ServerFixture.Event(actor: $"user-{done + i}"))));
                    Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                }

                await ServerFixture.WaitForCheckpointAsync(acme, "acme", Events);
                id = (await ExportTests.CreateAsync(acme, "acme", new { format = "ndjson" })).GetProperty("id").GetString()!;

                // Kill once the first entries file is recorded and before the job ends.
                var deadline = DateTime.UtcNow.AddSeconds(120);
                while (true)
                {
                    var job = await acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/exports/{id}");
                    Assert.True(job.GetProperty("state").GetString() is "queued" or "running", $"the job ended before the kill: {job}");
                    if (job.GetProperty("events").GetUInt64() >= 65_536)
                    {
                        break;
                    }

                    Assert.True(DateTime.UtcNow < deadline, "the job made no progress within 120 s");
                    await Task.Delay(10);
                }

                server.Kill();
            }

            var stateFile = Path.Combine(exportDirectory, "jobs", "acme", id, "state.json");
            var atKill = JsonDocument.Parse(await File.ReadAllBytesAsync(stateFile)).RootElement.Clone();
            Assert.Equal("running", atKill.GetProperty("state").GetString());
            var partsAtKill = atKill.GetProperty("partsDone").GetInt32();

            // On a loaded machine the worker may write the remaining files between the poll and the kill; with the job still
            // running it was then killed while packing the bundle, which the restart must resume just the same.
            Assert.InRange(partsAtKill, 1, 4);
            Assert.True(File.Exists(Path.Combine(exportDirectory, "jobs", "acme", id, "staging", "entries", "000000.ndjson")));

            await using (var restarted = await ChildServer.StartAsync(directory, adminKey, arguments))
            {
                using var acme = Client(restarted.BaseAddress, key);
                var job = await ExportTests.WaitForStateAsync(acme, "acme", id, "succeeded");
                var bundle = await ExportTests.DownloadAsync(acme, "acme", id);
                var check = await ExportBundleCheck.VerifyAsync(bundle, await ExportBundleCheck.VerifiersAsync(acme));

                Assert.Equal((ulong)Events, job.GetProperty("events").GetUInt64());
                Assert.Equal((ulong)Events, check.Manifest.Events);
                Assert.Equal(4, check.Manifest.Files.Count(f => f.Name.StartsWith("entries/", StringComparison.Ordinal)));
                Assert.Equal(8, check.Manifest.Files.Count); // each entries file with its hashes file
                Assert.Equal(await acme.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{Events - 1}"), check.Leaves[^1]);
            }

            // Resumed, not restarted: the second run began at the part the first had recorded (the persisted progress).
            var final = JsonDocument.Parse(await File.ReadAllBytesAsync(stateFile)).RootElement;
            Assert.Equal(2, final.GetProperty("runs").GetInt32());
            Assert.Equal([0, partsAtKill], final.GetProperty("runStarts").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static HttpClient Client(Uri baseAddress, string key)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
