using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Atp.Server.Integrity;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Issue 21, finding 2 and the integrity sweep, over real server processes and real stores: a byte of a stored leaf is
/// flipped while the server is down; after the restart no read path serves the altered bytes (integrity-failure, or the
/// search item marked) and one <c>atp.alerts.ops.v1</c> alert names the tenant and index; the sweep finds a flipped
/// leaf and a flipped node on its own.
/// </summary>
public sealed class IntegrityTests
{
    private const string Tenant = "tamper";

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Altered_leaf_bytes_are_never_served_and_alerted_once(string engine)
    {
        var directory = Directory.CreateTempSubdirectory("atp-integrity-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        var storage = engine == "postgres" ? await TestStorage.NewPostgresStoreArgumentsAsync() : [];
        try
        {
            string key;
            List<Guid> ids;
            byte[] original;
            await using (var server = await ChildServer.StartAsync(directory, adminKey, storage))
            {
                (key, ids) = await IngestAsync(server.BaseAddress, adminKey, 6);
                using var client = Client(server.BaseAddress, key);
                await ServerFixture.WaitForCheckpointAsync(client, Tenant, 6);
                await ServerFixture.WaitForProjectionAsync(client, Tenant);
                original = await client.GetByteArrayAsync($"/v1/tenants/{Tenant}/log/entries/2");
                server.Kill();
            }

            // "document.update" becomes "Document.update": still valid JSON, plausible, and wrong.
            await new StoreTamper(directory, storage).FlipAsync("leaf", Tenant, 2, StoreTamper.OffsetOf(original, "document.update"), 0x20);

            // The sweep is off so that what finds the fault here is the read path alone.
            await using (var server = await ChildServer.StartAsync(directory, adminKey, [.. storage, "--Atp:Integrity:Sweep:Enabled=false"]))
            {
                using var client = Client(server.BaseAddress, key);
                var entry = await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/2");
                var problem = await ProblemAssert.IsProblemAsync(entry, HttpStatusCode.InternalServerError, "integrity-failure");
                Assert.Contains("entry 2", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
                Assert.False(entry.Headers.Contains("Leaf-Hash"));
                Assert.DoesNotContain("Document.update", await entry.Content.ReadAsStringAsync(), StringComparison.Ordinal);

                await ProblemAssert.IsProblemAsync(await client.GetAsync($"/v1/tenants/{Tenant}/events/{ids[2]}"), HttpStatusCode.InternalServerError, "integrity-failure");
                await ProblemAssert.IsProblemAsync(await client.GetAsync($"/v1/tenants/{Tenant}/log/proof/inclusion?index=2"), HttpStatusCode.InternalServerError, "integrity-failure");

                // The other entries are served as before.
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/1")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{Tenant}/events/{ids[3]}")).StatusCode);

                // A search page keeps its other items and marks the altered one, without its bytes.
                foreach (var query in new[] { "order=asc&limit=100", "order=asc&limit=100&verify=true" })
                {
                    var page = await client.GetAsync($"/v1/tenants/{Tenant}/events?{query}");
                    Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                    var text = await page.Content.ReadAsStringAsync();
                    Assert.DoesNotContain("Document.update", text, StringComparison.Ordinal);
                    var items = JsonDocument.Parse(text).RootElement.GetProperty("items").EnumerateArray().ToList();
                    Assert.Equal(6, items.Count);
                    var marked = Assert.Single(items, i => i.TryGetProperty("integrityFailure", out _));
                    Assert.Equal(2UL, marked.GetProperty("index").GetUInt64());
                    Assert.Equal("https://atp.dev/problems/integrity-failure", marked.GetProperty("integrityFailure").GetString());
                    Assert.False(marked.TryGetProperty("event", out _));
                    Assert.True(marked.GetProperty("quarantined").GetBoolean());
                    Assert.All(items.Where(i => i.GetProperty("index").GetUInt64() != 2), i => Assert.Equal(JsonValueKind.Object, i.GetProperty("event").ValueKind));
                }

                // Five reads of the bad entry, one alert.
                using var admin = Client(server.BaseAddress, adminKey);
                var alerts = await WaitForAlertsAsync(admin, a => a.Kind == "leaf" && a.Index == "2" && a.Source == "read");
                await Task.Delay(500);
                Assert.Single(await AlertsAsync(admin), a => a.Kind == "leaf" && a.Index == "2");
                Assert.Equal(Tenant, alerts[0].Tenant);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task The_sweep_finds_a_flipped_leaf_and_a_flipped_node_and_alerts(string engine)
    {
        var directory = Directory.CreateTempSubdirectory("atp-sweep-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        var storage = engine == "postgres" ? await TestStorage.NewPostgresStoreArgumentsAsync() : [];
        string[] sweep = ["--Atp:Integrity:Sweep:EntriesPerSecond=100000", "--Atp:Integrity:Sweep:PauseBetweenPasses=00:00:00.200"];
        try
        {
            await using (var server = await ChildServer.StartAsync(directory, adminKey, [.. storage, .. sweep]))
            {
                var (key, _) = await IngestAsync(server.BaseAddress, adminKey, 8);
                using var client = Client(server.BaseAddress, key);
                await ServerFixture.WaitForCheckpointAsync(client, Tenant, 8);
                server.Kill();
            }

            var tamper = new StoreTamper(directory, storage);
            await tamper.FlipAsync("leaf", Tenant, 5, 40);

            // Leaf 3 completes node (level 1, index 1) and node (level 2, index 0); the first is altered.
            await tamper.FlipAsync("nodes", Tenant, 3, 9);

            await using (var server = await ChildServer.StartAsync(directory, adminKey, [.. storage, .. sweep]))
            {
                // Nothing reads the tenant's entries here: the sweep alone must find both.
                using var admin = Client(server.BaseAddress, adminKey);
                await WaitForAlertsAsync(admin, a => a.Kind == "leaf" && a.Index == "5" && a.Source == "sweep" && a.Tenant == Tenant);
                await WaitForAlertsAsync(admin, a => a.Kind == "node" && a.Index == "3" && a.Source == "sweep" && a.Tenant == Tenant);

                // Pass after pass finds them again, but each is alerted once.
                await Task.Delay(1000);
                var alerts = await AlertsAsync(admin);
                Assert.Single(alerts, a => a.Kind == "leaf" && a.Index == "5");
                Assert.Single(alerts, a => a.Kind == "node" && a.Index == "3");
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task The_sweep_reports_its_progress_and_mismatches_on_the_Atp_Integrity_meter()
    {
        var checkedEntries = 0L;
        var mismatches = 0L;
        long position = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == IntegrityMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            switch (instrument.Name)
            {
                case "atp.integrity.entries_checked": Interlocked.Add(ref checkedEntries, value); break;
                case "atp.integrity.mismatches": Interlocked.Add(ref mismatches, value); break;
                case "atp.integrity.sweep.position": Interlocked.Exchange(ref position, Math.Max(Interlocked.Read(ref position), value)); break;
            }
        });
        listener.Start();

        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Integrity:Sweep:EntriesPerSecond"] = "100000",
            ["Atp:Integrity:Sweep:PauseBetweenPasses"] = "00:00:00.100",
        });
        var key = await server.CreateTenantWithKeyAsync(Tenant);
        using var client = server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(ServerFixture.Batch(10)))).StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Interlocked.Read(ref checkedEntries) < 10 && DateTime.UtcNow < deadline)
        {
            listener.RecordObservableInstruments();
            await Task.Delay(50);
        }

        listener.RecordObservableInstruments();
        Assert.True(Interlocked.Read(ref checkedEntries) >= 10, $"the sweep re-verified {checkedEntries} entries");
        Assert.True(Interlocked.Read(ref position) >= 10, $"the sweep position was {position}");
        Assert.Equal(0, Interlocked.Read(ref mismatches));

        // Altered while the server runs: a later pass finds it.
        var leaf = await client.GetByteArrayAsync($"/v1/tenants/{Tenant}/log/entries/4");
        await new StoreTamper(server.DataDirectory, server.StorageArguments).FlipAsync("leaf", Tenant, 4, StoreTamper.OffsetOf(leaf, "user-4"), 0x01);
        deadline = DateTime.UtcNow.AddSeconds(20);
        while (Interlocked.Read(ref mismatches) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(Interlocked.Read(ref mismatches) >= 1, "the sweep did not count the altered leaf");
        await server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        using var admin = server.Admin;
        await WaitForAlertsAsync(admin, a => a.Kind == "leaf" && a.Index == "4" && a.Tenant == Tenant);
    }

    private sealed record Alert(string Tenant, string Kind, string Index, string Source);

    private static async Task<(string Key, List<Guid> Ids)> IngestAsync(Uri baseAddress, string adminKey, int count)
    {
        using var admin = Client(baseAddress, adminKey);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = Tenant, name = Tenant })).StatusCode);
        var created = await admin.PostAsJsonAsync($"/v1/tenants/{Tenant}/api-keys", new { name = "t", scopes = new[] { "events:write", "events:read" } });
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        using var client = Client(baseAddress, key);
        var response = await client.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(ServerFixture.Batch(count)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var ids = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ToList();
        return (key, ids);
    }

    private static async Task<List<Alert>> WaitForAlertsAsync(HttpClient admin, Func<Alert, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var alerts = (await AlertsAsync(admin)).Where(match).ToList();
            if (alerts.Count > 0)
            {
                return alerts;
            }

            Assert.True(DateTime.UtcNow < deadline, "no matching integrity alert in the platform audit log within 30 s");
            await Task.Delay(100);
        }
    }

    // The platform audit log, read entry by entry (the log itself, not the search read models, so no projection wait).
    private static async Task<List<Alert>> AlertsAsync(HttpClient admin)
    {
        var alerts = new List<Alert>();
        for (var i = 0; ; i++)
        {
            var response = await admin.GetAsync($"/v1/tenants/{PlatformAuditLog.TenantId}/log/entries/{i}");
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return alerts;
            }

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var entry = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync()).RootElement;
            if (entry.GetProperty("type").GetString() == PlatformEvents.AlertType && entry.GetProperty("action").GetString() == StoredLeafCheck.AlertAction)
            {
                var data = entry.GetProperty("data");
                alerts.Add(new Alert(
                    entry.GetProperty("targets")[0].GetProperty("id").GetString()!,
                    data.GetProperty("kind").GetString()!,
                    data.TryGetProperty("index", out var index) ? index.GetString()! : data.GetProperty("treeSize").GetString()!,
                    data.GetProperty("source").GetString()!));
            }
        }
    }

    private static HttpClient Client(Uri baseAddress, string key)
    {
        var client = new HttpClient { BaseAddress = baseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
