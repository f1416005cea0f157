using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>ndjson exports are signed bundles that verify offline; every export is in the platform audit log.</summary>
public sealed class ExportBundleTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Export:SweepInterval"] = "00:00:00.100" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_complete_ndjson_export_is_a_bundle_that_verifies_and_holds_the_exact_leaves()
    {
        using var acme = await ExportTests.TenantWithEventsAsync(_server, "acme", 12);
        var created = await ExportTests.CreateAsync(acme, "acme", new { format = "ndjson", fromIndex = 3, toIndex = 5 });
        var id = created.GetProperty("id").GetString()!;

        // A complete bundle ends at a signed checkpoint: the one at or after toIndex (here the only one, 12).
        Assert.Equal(12UL, created.GetProperty("toIndex").GetUInt64());
        var job = await ExportTests.WaitForStateAsync(acme, "acme", id, "succeeded");
        var bundle = await ExportTests.DownloadAsync(acme, "acme", id);
        var check = await ExportBundleCheck.VerifyAsync(bundle, await ExportBundleCheck.VerifiersAsync(acme));

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bundle)), job.GetProperty("sha256").GetString());
        Assert.Equal(9UL, job.GetProperty("events").GetUInt64());
        Assert.True(check.Manifest.Complete);
        Assert.Equal("acme", check.Manifest.Tenant);
        Assert.Equal("atp.test/test-cell-1/acme", check.Manifest.Origin);
        Assert.Equal(3UL, check.Manifest.From);
        Assert.Equal(12UL, check.Manifest.TreeSize);
        Assert.Equal(id, check.Manifest.ExportId);
        Assert.Null(check.Manifest.Filters);

        // It continues the tree of size 3: that tree's root (the one a bundle ending there would carry) and the
        // consistency proof from it to the checkpoint, which the check above verified.
        Assert.Equal(3UL, check.Manifest.Previous!.TreeSize);
        Assert.NotEmpty(check.Manifest.Previous.ConsistencyProof);
        for (var i = 0; i < 9; i++)
        {
            Assert.Equal(await acme.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{3 + i}"), check.Leaves[i]);
        }

        // The staging files are gone once the bundle is written.
        Assert.False(Directory.Exists(Path.Combine(ExportTests.ExportDirectory(_server), "jobs", "acme", id, "staging")));
    }

    [Fact]
    public async Task A_filtered_ndjson_export_carries_an_inclusion_proof_per_entry_and_says_it_is_not_complete()
    {
        using var acme = await ExportTests.TenantWithEventsAsync(_server, "acme", 20, i => ServerFixture.Event(actor: $"user-{i % 4}"));
        var id = (await ExportTests.CreateAsync(acme, "acme", new { format = "ndjson", fromIndex = 2, filters = new { actor = "user-2" } })).GetProperty("id").GetString()!;
        await ExportTests.WaitForStateAsync(acme, "acme", id, "succeeded");
        var check = await ExportBundleCheck.VerifyAsync(await ExportTests.DownloadAsync(acme, "acme", id), await ExportBundleCheck.VerifiersAsync(acme));

        Assert.False(check.Manifest.Complete);
        Assert.Equal("user-2", check.Manifest.Filters!.Value.GetProperty("actor").GetString());
        Assert.Empty(check.Manifest.Edge);
        Assert.Equal(5, check.Leaves.Count);
        Assert.Contains(check.Members.Keys, k => k == "proofs/000000.ndjson");
        var indexes = new[] { 2, 6, 10, 14, 18 };
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(await acme.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{indexes[i]}"), check.Leaves[i]);
        }
    }

    [Fact]
    public async Task Exports_are_recorded_in_the_platform_audit_log_with_who_range_format_size_and_hash()
    {
        using var acme = await ExportTests.TenantWithEventsAsync(_server, "acme", 5);
        var id = (await ExportTests.CreateAsync(acme, "acme", new { format = "csv", fromIndex = 1, toIndex = 4 })).GetProperty("id").GetString()!;
        var job = await ExportTests.WaitForStateAsync(acme, "acme", id, "succeeded");
        await ExportTests.DownloadAsync(acme, "acme", id);
        using (var resumed = new HttpRequestMessage(HttpMethod.Get, $"/v1/tenants/acme/exports/{id}/download"))
        {
            resumed.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(5, null);
            Assert.Equal(HttpStatusCode.PartialContent, (await acme.SendAsync(resumed)).StatusCode);
        }

        using var admin = _server.Admin;
        var events = new List<JsonElement>();
        for (var deadline = DateTime.UtcNow.AddSeconds(30); events.Count < 3 && DateTime.UtcNow < deadline;)
        {
            await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
            await ServerFixture.WaitForProjectionAsync(admin, PlatformAuditLog.TenantId);
            var page = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000&action=export.*");
            events = page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event")).ToList();
            if (events.Count < 3)
            {
                await Task.Delay(50);
            }
        }

        Assert.Equal(3, events.Count);

        // One download record: the Range request from byte 5 continues the first download. The worker records the
        // success just after the job's state turns succeeded, so the download's record may come before it.
        var actions = events.Select(e => e.GetProperty("action").GetString()!).ToArray();
        Assert.Equal("export.created", actions[0]);
        Assert.Equal(["export.created", "export.downloaded", "export.succeeded"], actions.Order(StringComparer.Ordinal).ToArray());
        var succeeded = events.Single(e => e.GetProperty("action").GetString() == "export.succeeded");
        var downloaded = events.Single(e => e.GetProperty("action").GetString() == "export.downloaded");
        var keyId = events[0].GetProperty("actor").GetProperty("id").GetString();
        Assert.StartsWith("key_", keyId, StringComparison.Ordinal);
        foreach (var e in events)
        {
            Assert.Equal(PlatformEvents.AdminType, e.GetProperty("type").GetString());
            Assert.Equal(keyId, e.GetProperty("actor").GetProperty("id").GetString());
            Assert.Equal("acme", e.GetProperty("targets")[0].GetProperty("id").GetString());
            var data = e.GetProperty("data");
            Assert.Equal(id, data.GetProperty("exportId").GetString());
            Assert.Equal("csv", data.GetProperty("format").GetString());
            Assert.Equal("1", data.GetProperty("fromIndex").GetString());
            Assert.Equal("4", data.GetProperty("toIndex").GetString());
            Assert.Equal("none", data.GetProperty("filters").GetString());
        }

        Assert.Equal(job.GetProperty("sha256").GetString(), succeeded.GetProperty("data").GetProperty("sha256").GetString());
        Assert.Equal(job.GetProperty("bytes").GetInt64().ToString(), succeeded.GetProperty("data").GetProperty("bytes").GetString());
        Assert.Equal("3", succeeded.GetProperty("data").GetProperty("events").GetString());
        Assert.Equal(job.GetProperty("sha256").GetString(), downloaded.GetProperty("data").GetProperty("sha256").GetString());
        Assert.Equal("whole", downloaded.GetProperty("data").GetProperty("range").GetString());
        Assert.Equal("127.0.0.1", downloaded.GetProperty("context").GetProperty("ip").GetString());
    }
}
