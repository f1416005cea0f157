using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// A full disk, for real: the embedded engine's data directory on a small tmpfs, a server as a child process, the rest
/// of the tmpfs taken by a filler file. Readiness means "can append now"; appends get 503 storage-full with
/// Retry-After; the full state is logged once, not per commit; freeing space lets appends resume and truncates the WAL;
/// and a server started on a disk found full starts and serves reads. Mounting needs root (CI runs as root): without it
/// the test fails and says so. Always the embedded engine, whatever ATP_TEST_STORAGE says: it is its data directory
/// that fills (PostgreSQL's 53100 is covered by the store tests of that engine).
/// </summary>
public sealed class DiskFullTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Tenant = "diskfull";
    private const int EventsPerRequest = 20;

    // A reserve of 4 MiB and 8 MiB free needed to resume keep the tmpfs small and the test quick.
    private static readonly string[] SpaceSettings =
    [
        "--Atp:Storage:Provider=sqlite",
        "--Atp:Sqlite:SpaceReserveBytes=4194304",
        "--Atp:Sqlite:MinimumFreeBytes=8388608",
        "--Logging:LogLevel:Atp.Storage=Information",
    ];

    [Fact]
    public async Task A_full_disk_refuses_appends_with_503_logs_once_and_recovers_and_a_start_on_it_serves_reads()
    {
        Assert.True(Environment.IsPrivilegedProcess, "DiskFullTests mount a tmpfs and need root (CI runs the tests as root); run them as root.");
        var mount = Directory.CreateTempSubdirectory("atp-diskfull-").FullName;
        await RunAsync("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount);
        try
        {
            var data = Path.Combine(mount, "data");
            var filler = Path.Combine(mount, "filler");
            var adminKey = ApiKeyFormat.Generate();
            string tenantKey;
            var stored = 0;

            await using (var server = await ChildServer.StartAsync(data, adminKey, SpaceSettings))
            {
                using var admin = Client(server.BaseAddress, adminKey);
                Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = Tenant, name = Tenant })).StatusCode);
                var key = await admin.PostAsJsonAsync($"/v1/tenants/{Tenant}/api-keys", new { name = "disk", scopes = new[] { "events:write", "events:read" } });
                tenantKey = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                using var client = Client(server.BaseAddress, tenantKey);
                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal(HttpStatusCode.Created, (await AppendAsync(client, i)).StatusCode);
                    stored += EventsPerRequest;
                }

                // The reserve is written by the store's space watcher within a second or two of start.
                await WaitUntilAsync(() => Task.FromResult(File.Exists(Path.Combine(data, "atp-space-reserve"))), "the space reserve was never written");

                // Full: the filler takes every byte left; appends then fail for lack of space (possibly after a few that
                // still fit in pages SQLite had already allocated).
                Fill(filler);
                HttpResponseMessage refused = null!;
                for (var i = 0; i < 200; i++)
                {
                    refused = await AppendAsync(client, 100 + i);
                    if (refused.StatusCode != HttpStatusCode.Created)
                    {
                        break;
                    }

                    stored += EventsPerRequest;
                }

                await AssertStorageFullAsync(refused);
                for (var i = 0; i < 20; i++)
                {
                    await AssertStorageFullAsync(await AppendAsync(client, 1000 + i));
                }

                using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
                var ready = await anonymous.GetAsync("/readyz");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                Assert.Contains("disk is full", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);

                // Reads go on.
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/0")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/log/checkpoint")).StatusCode);

                // One line for the change of state, not a stack trace per refused commit.
                await Task.Delay(1500); // the sealer and projector meet the full disk too
                var lines = server.Output.ToArray();
                output.WriteLine(string.Join('\n', lines));
                Assert.Equal(1, lines.Count(l => l.Contains("The store's disk is full (", StringComparison.Ordinal)));
                Assert.DoesNotContain(lines, l => l.Contains("Group commit of", StringComparison.Ordinal));
                Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));

                // Space returns: readiness and appends come back, and the WAL is checkpointed and truncated. A WAL file
                // never shrinks unless truncated, so it must now be smaller than it was while full. (Not zero: the
                // sealer, projector and platform log may commit between the truncation and this read.)
                var walPath = Path.Combine(data, "atp.db-wal");
                var walWhileFull = new FileInfo(walPath).Length;
                Assert.True(walWhileFull > 0, "the WAL was empty while full");
                File.Delete(filler);
                await WaitUntilAsync(async () => (await anonymous.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, "readiness did not return after space was freed");
                var walAfter = new FileInfo(walPath).Length;
                output.WriteLine($"WAL while full {walWhileFull} bytes, after recovery {walAfter} bytes");
                Assert.True(walAfter < walWhileFull / 2, $"the WAL was not truncated on recovery: {walAfter} bytes after, {walWhileFull} while full");
                Assert.Equal(HttpStatusCode.Created, (await AppendAsync(client, 5000)).StatusCode);
                stored += EventsPerRequest;
                // (The child's console logger writes asynchronously: the line may trail the recovery a little.)
                await WaitUntilAsync(() => Task.FromResult(server.Output.Any(l => l.Contains("has room again", StringComparison.Ordinal))), "no line said the disk had room again");
                Assert.Equal(1, server.Output.Count(l => l.Contains("has room again", StringComparison.Ordinal)));
                Assert.Contains(server.Output, l => l.Contains("WAL checkpointed and truncated", StringComparison.Ordinal));

                // A clean shutdown: SQLite removes the WAL and its index, so the next start must create them.
                await server.StopAsync();
            }

            Assert.False(File.Exists(Path.Combine(data, "atp.db-shm")), "the clean shutdown left the WAL index: the restart below would not need room to open");
            Fill(filler);
            await using (var restarted = await ChildServer.StartAsync(data, adminKey, SpaceSettings, readyPath: "/livez"))
            {
                using var client = Client(restarted.BaseAddress, tenantKey);
                using var anonymous = new HttpClient { BaseAddress = restarted.BaseAddress };
                Assert.Equal(HttpStatusCode.ServiceUnavailable, (await anonymous.GetAsync("/readyz")).StatusCode);
                foreach (var index in new[] { 0, stored / 2, stored - 1 })
                {
                    Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/{index}")).StatusCode);
                }

                Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/{stored}")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/log/checkpoint")).StatusCode);
                await AssertStorageFullAsync(await AppendAsync(client, 6000));

                File.Delete(filler);
                await WaitUntilAsync(async () => (await anonymous.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, "readiness did not return after space was freed (start on a full disk)");
                Assert.Equal(HttpStatusCode.Created, (await AppendAsync(client, 6001)).StatusCode);
                output.WriteLine(string.Join('\n', restarted.Output));
                Assert.Equal(1, restarted.Output.Count(l => l.Contains("The store's disk is full (", StringComparison.Ordinal)));
            }
        }
        finally
        {
            await RunAsync("umount", "-l", mount);
            Directory.Delete(mount, recursive: true);
        }
    }

    private static async Task AssertStorageFullAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("https://atp.dev/problems/storage-full", problem.GetProperty("type").GetString());
        Assert.True(response.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 }, "a 503 for a full disk must carry Retry-After (seconds)");
    }

    // Writes zeros until the file system refuses: then not one byte is left for the server.
    private static void Fill(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1);
        foreach (var chunk in new[] { 1 << 20, 1 << 12 })
        {
            var zeros = new byte[chunk];
            try
            {
                while (true)
                {
                    stream.Write(zeros);
                }
            }
            catch (IOException)
            {
                // This chunk size no longer fits; a smaller one may.
            }
        }
    }

    private static Task<HttpResponseMessage> AppendAsync(HttpClient client, int n)
    {
        // ~2 KiB an event, 20 a request: the tmpfs fills within a few hundred requests even without the filler.
        var events = Enumerable.Range(0, EventsPerRequest).Select(i => new
        {
            type = "document.changed",
            occurredAt = "2026-01-01T00:00:00Z",
            actor = new { type = "user", id = $"u{n}" },
            action = "document.update",
            targets = new[] { new { type = "document", id = $"d{n}-{i}" } },
            data = new { pad = new string('x', 2000) },
        });
        return client.PostAsJsonAsync($"/v1/tenants/{Tenant}/events", new { events });
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), failure);
            await Task.Delay(100);
        }
    }

    private static async Task RunAsync(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{command} {string.Join(' ', arguments)} failed: {error}");
    }

    private static HttpClient Client(Uri baseAddress, string key)
    {
        var client = new HttpClient { BaseAddress = baseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
