using System.Formats.Tar;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Export;
using Atp.Storage.Contract;

namespace Atp.Server.Tests;

/// <summary>What export does as time passes, on a fake clock: jobs expire after the retention; daily bundles chain.</summary>
public sealed class ExportClockTests
{
    // The server's timers (the sealer's) run on the fake clock: it moves 100 ms every 20 ms of real time meanwhile.
    private static async Task PumpAsync(ManualClock clock, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(20, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_job_expires_after_the_retention_its_files_are_deleted_and_its_download_is_410()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var stop = new CancellationTokenSource();
        var pump = PumpAsync(clock, stop.Token);
        await using var server = await ServerFixture.StartAsync(clock: clock, settings: new Dictionary<string, string?>
        {
            ["Atp:Export:Retention"] = "01:00:00",
            ["Atp:Export:SweepInterval"] = "00:00:00.100",
        });
        using var acme = await ExportTests.TenantWithEventsAsync(server, "acme", 3);
        var created = await ExportTests.CreateAsync(acme, "acme", new { format = "csv" });
        var id = created.GetProperty("id").GetString()!;
        Assert.Equal(created.GetProperty("createdAt").GetDateTimeOffset().AddHours(1), created.GetProperty("expiresAt").GetDateTimeOffset());
        await ExportTests.WaitForStateAsync(acme, "acme", id, "succeeded");
        Assert.Equal(HttpStatusCode.OK, (await acme.GetAsync($"/v1/tenants/acme/exports/{id}/download")).StatusCode);
        await stop.CancelAsync();
        await pump;

        clock.Advance(TimeSpan.FromMinutes(61));
        await ExportTests.WaitForStateAsync(acme, "acme", id, "expired");

        await ProblemAssert.IsProblemAsync(await acme.GetAsync($"/v1/tenants/acme/exports/{id}/download"), HttpStatusCode.Gone, "export-expired");
        var directory = Path.Combine(ExportTests.ExportDirectory(server), "jobs", "acme", id);
        Assert.Equal(["state.json"], Directory.EnumerateFileSystemEntries(directory).Select(f => Path.GetFileName(f)!).ToArray());
        Assert.Equal("expired", (await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/exports")).GetProperty("items")[0].GetProperty("state").GetString());
    }

    [Fact]
    public async Task Daily_bundles_chain_each_day_to_the_previous_days_checkpoint_and_skip_logs_that_did_not_grow()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 7, 10, 0, 0, TimeSpan.Zero));
        using var stop = new CancellationTokenSource();
        var pump = PumpAsync(clock, stop.Token);
        await using var server = await ServerFixture.StartAsync(clock: clock, settings: new Dictionary<string, string?>
        {
            ["Atp:Export:Daily:Enabled"] = "true",
            ["Atp:Export:Daily:Time"] = "01:00:00",
            ["Atp:Export:SweepInterval"] = "00:00:00.100",
        });
        var daily = Path.Combine(ExportTests.ExportDirectory(server), "daily");
        using var acme = await ExportTests.TenantWithEventsAsync(server, "acme", 5);
        using var quiet = await ExportTests.TenantWithEventsAsync(server, "quiet", 2);
        var verifiers = await ExportBundleCheck.VerifiersAsync(acme);

        var first = await ExportBundleCheck.VerifyAsync(await WaitForFileAsync(Path.Combine(daily, "acme", "2026-12-07.tar")), verifiers);
        Assert.True(first.Manifest.Complete);
        Assert.Equal(0UL, first.Manifest.From);
        Assert.Equal(5UL, first.Manifest.TreeSize);
        Assert.Null(first.Manifest.Previous);
        await WaitForFileAsync(Path.Combine(daily, "quiet", "2026-12-07.tar"));

        // More events the same day go into the next day's bundle.
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3, i => ServerFixture.Event(actor: $"day2-{i}"))))).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(acme, "acme", 8);
        clock.Advance(TimeSpan.FromDays(1));

        var second = await ExportBundleCheck.VerifyAsync(await WaitForFileAsync(Path.Combine(daily, "acme", "2026-12-08.tar")), verifiers, first.Manifest);
        Assert.Equal(5UL, second.Manifest.From);
        Assert.Equal(8UL, second.Manifest.TreeSize);
        Assert.Equal(5UL, second.Manifest.Previous!.TreeSize);
        Assert.Equal(first.Manifest.RootHash, second.Manifest.Previous.RootHash);
        Assert.Equal(first.Manifest.Origin, second.Manifest.Origin);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(await acme.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{5 + i}"), second.Leaves[i]);
        }

        // The quiet tenant's log did not grow: no second bundle, ever (a few more sweeps run meanwhile).
        await Task.Delay(500);
        Assert.False(File.Exists(Path.Combine(daily, "quiet", "2026-12-08.tar")));
        Assert.Equal(["2026-12-07.tar"], Directory.EnumerateFiles(Path.Combine(daily, "quiet")).Select(f => Path.GetFileName(f)!).ToArray());
        await stop.CancelAsync();
        await pump;
    }

    private static async Task<byte[]> WaitForFileAsync(string path)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(path))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{path} was not written within 30 s");
            await Task.Delay(50);
        }

        return await File.ReadAllBytesAsync(path);
    }
}
