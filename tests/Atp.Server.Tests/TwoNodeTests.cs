using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Many nodes, one cell: two server processes on one PostgreSQL database (sharing the cell's data directory, hence its
/// signing key) ingest for the same tenants at once. Afterwards every tenant's log is gap-free, every receipt names the
/// entry stored at its index, and every checkpoint either node signed is consistent with every later one.
/// </summary>
[Trait("Engine", "postgres")]
public sealed class TwoNodeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string[] Tenants = ["shared-a", "shared-b", "shared-c"];

    [Fact]
    public async Task Two_nodes_ingesting_for_the_same_tenants_keep_every_log_gap_free_and_every_checkpoint_consistent()
    {
        var directory = Directory.CreateTempSubdirectory("atp-two-nodes-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        var storage = await TestStorage.NewPostgresStoreArgumentsAsync();
        try
        {
            // The first node migrates and creates the cell key; the second joins the same database and key.
            await using var first = await ChildServer.StartAsync(directory, adminKey, storage);
            await using var second = await ChildServer.StartAsync(directory, adminKey, storage);
            var nodes = new[] { first.BaseAddress, second.BaseAddress };

            using var admin = CrashTests.Client(first.BaseAddress, adminKey);
            var verifier = NoteVerifier.Parse((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
            using var adminOfSecond = CrashTests.Client(second.BaseAddress, adminKey);
            Assert.Equal(await admin.GetStringAsync("/v1/log/keys"), await adminOfSecond.GetStringAsync("/v1/log/keys"));
            var keys = new Dictionary<string, string>();
            foreach (var tenant in Tenants)
            {
                Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
                var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "ingest", scopes = new[] { "events:write", "events:read" } });
                keys[tenant] = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
            }

            var receipts = new ConcurrentBag<(string Tenant, Guid Id, ulong Index, string LeafHash)>();
            var checkpoints = new ConcurrentBag<(string Tenant, string Note)>();
            using var stopPolling = new CancellationTokenSource();
            var pollers = nodes.Select(node => PollCheckpointsAsync(node, keys, checkpoints, stopPolling.Token)).ToList();
            await Task.WhenAll(Enumerable.Range(0, 8).Select(w => WriteAsync(nodes[w % 2], keys, w, receipts)));
            await stopPolling.CancelAsync();
            await Task.WhenAll(pollers);

            foreach (var tenant in Tenants)
            {
                var mine = receipts.Where(r => r.Tenant == tenant).ToList();
                using var reader = CrashTests.Client(second.BaseAddress, keys[tenant]);
                var entries = await CrashTests.ListAllAsync(reader, tenant);

                Assert.Equal(Enumerable.Range(0, mine.Count).Select(i => (ulong)i), entries.Select(e => e.Index));
                foreach (var receipt in mine)
                {
                    Assert.Equal(receipt.Id, entries[(int)receipt.Index].Id);
                    Assert.Equal(receipt.LeafHash, entries[(int)receipt.Index].LeafHash);
                }

                // Both nodes come to sign the same full tree; every earlier checkpoint of either node is its prefix.
                var latestNotes = new List<string>();
                foreach (var node in nodes)
                {
                    using var client = CrashTests.Client(node, keys[tenant]);
                    latestNotes.Add(await ServerFixture.WaitForCheckpointAsync(client, tenant, (ulong)entries.Count));
                }

                Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(latestNotes[0]), [verifier], out var latest).IsValid);
                Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(latestNotes[1]), [verifier], out var latestOfSecond).IsValid);
                Assert.Equal((ulong)entries.Count, latest!.Size);
                Assert.Equal(latest.Root, latestOfSecond!.Root);
                var seen = checkpoints.Where(c => c.Tenant == tenant).Select(c => c.Note).Distinct().ToList();
                Assert.True(seen.Count > 1, $"{tenant}: only {seen.Count} checkpoint(s) seen during ingest; the consistency check would prove little");
                foreach (var note in seen)
                {
                    await CrashTests.AssertConsistentAsync(reader, tenant, note, verifier, latest);
                }

                output.WriteLine($"{tenant}: {entries.Count} entries, {seen.Count} distinct checkpoints checked");
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task WriteAsync(Uri node, Dictionary<string, string> keys, int seed, ConcurrentBag<(string, Guid, ulong, string)> receipts)
    {
        var random = new Random(seed);
        var clients = keys.ToDictionary(k => k.Key, k => CrashTests.Client(node, k.Value));
        try
        {
            for (var i = 0; i < 40; i++)
            {
                var tenant = Tenants[random.Next(Tenants.Length)];
                var response = await clients[tenant].PostAsync(
                    $"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(random.Next(1, 21), j => ServerFixture.Event(actor: $"w{seed}-{i}-{j}"))));
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                var body = await response.Content.ReadFromJsonAsync<JsonElement>();
                foreach (var r in body.GetProperty("receipts").EnumerateArray())
                {
                    receipts.Add((tenant, r.GetProperty("id").GetGuid(), r.GetProperty("index").GetUInt64(), r.GetProperty("leafHash").GetString()!));
                }
            }
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }

    private static async Task PollCheckpointsAsync(Uri node, Dictionary<string, string> keys, ConcurrentBag<(string, string)> checkpoints, CancellationToken stop)
    {
        var clients = keys.ToDictionary(k => k.Key, k => CrashTests.Client(node, k.Value));
        try
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var (tenant, client) in clients)
                {
                    var response = await client.GetAsync($"/v1/tenants/{tenant}/log/checkpoint", CancellationToken.None);
                    if (response.IsSuccessStatusCode)
                    {
                        checkpoints.Add((tenant, await response.Content.ReadAsStringAsync(CancellationToken.None)));
                    }
                }

                await Task.Delay(30, CancellationToken.None);
            }
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }
}
