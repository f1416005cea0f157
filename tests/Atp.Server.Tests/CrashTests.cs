using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Acknowledged means durable: a server process is SIGKILLed at a random moment during concurrent ingest, restarted
/// on the same data, and every event whose receipt was returned must be there with the same index and leaf hash, the
/// log gap-free, and the tree consistent with every checkpoint signed before the crash.
/// </summary>
public sealed class CrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string[] Tenants = ["crash-a", "crash-b"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Every_receipted_event_survives_a_SIGKILL_during_concurrent_ingest(int seed)
    {
        var random = new Random(seed);
        var directory = Directory.CreateTempSubdirectory("atp-crash-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        try
        {
            var receipts = new ConcurrentBag<(string Tenant, Guid Id, ulong Index, string LeafHash)>();
            var checkpoints = new ConcurrentBag<(string Tenant, string Note)>();
            var keys = new Dictionary<string, string>();
            // The events' IPs are sealed (docs/classification.md), so the check below covers the data keys too.
            string[] storage = [.. await TestStorage.NewStoreArgumentsAsync(), "--Atp:Classification:SealEnvelopeFields=true"];
            NoteVerifier verifier;

            await using (var server = await ChildServer.StartAsync(directory, adminKey, storage))
            {
                using var admin = Client(server.BaseAddress, adminKey);
                verifier = NoteVerifier.Parse((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
                foreach (var tenant in Tenants)
                {
                    Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
                    var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "crash", scopes = new[] { "events:write", "events:read" } });
                    keys[tenant] = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                }

                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 8).Select(w => WriteUntilStoppedAsync(server.BaseAddress, keys, seed * 100 + w, receipts, stop.Token)).ToList();
                var poller = PollCheckpointsAsync(server.BaseAddress, keys, checkpoints, stop.Token);

                // The kill lands while ingest is under way: at a random moment after the first receipt (on a busy
                // machine the first appends can take longer than the random delay alone, notably on PostgreSQL).
                var waitingSince = DateTime.UtcNow;
                while (receipts.IsEmpty && DateTime.UtcNow - waitingSince < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(10);
                }

                await Task.Delay(random.Next(400, 1500));
                server.Kill();
                await stop.CancelAsync();
                await Task.WhenAll([.. writers, poller]);
            }

            Assert.False(receipts.IsEmpty, "no receipt was returned before the crash: the test proved nothing");
            output.WriteLine($"seed {seed}: {receipts.Count} receipted events, {checkpoints.Select(c => c.Note).Distinct().Count()} distinct checkpoints before the kill");

            await using (var restarted = await ChildServer.StartAsync(directory, adminKey, storage))
            {
                foreach (var tenant in Tenants)
                {
                    using var client = Client(restarted.BaseAddress, keys[tenant]);
                    var mine = receipts.Where(r => r.Tenant == tenant).ToList();
                    var entries = await ListAllAsync(client, tenant);

                    // Gap-free and duplicate-free: indexes are exactly 0..n-1.
                    Assert.Equal(Enumerable.Range(0, entries.Count).Select(i => (ulong)i), entries.Select(e => e.Index));
                    Assert.Equal(entries.Count, entries.Select(e => e.Id).Distinct().Count());
                    foreach (var receipt in mine)
                    {
                        Assert.True(receipt.Index < (ulong)entries.Count, $"receipted entry {receipt.Index} of {tenant} is missing after the crash");
                        Assert.Equal(receipt.LeafHash, entries[(int)receipt.Index].LeafHash);
                        Assert.Equal(receipt.Id, entries[(int)receipt.Index].Id);
                    }

                    var latestNote = await ServerFixture.WaitForCheckpointAsync(client, tenant, (ulong)entries.Count);
                    Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(latestNote), [verifier], out var latest).IsValid);
                    Assert.Equal((ulong)entries.Count, latest!.Size);
                    output.WriteLine($"{tenant}: {mine.Count} receipts, {entries.Count} entries after restart");

                    foreach (var note in checkpoints.Where(c => c.Tenant == tenant).Select(c => c.Note).Distinct())
                    {
                        await AssertConsistentAsync(client, tenant, note, verifier, latest);
                    }
                }
            }

            // The events' IPs are sealed (docs/classification.md): no leaf that survived the crash may have lost its data key.
            Assert.True(await ClassifiedFieldTests.AssertEveryTokenHasItsKeyAsync(directory, storage) > 0, "no sealed field was stored: the check proved nothing");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    internal static async Task WriteUntilStoppedAsync(Uri baseAddress, Dictionary<string, string> keys, int seed, ConcurrentBag<(string, Guid, ulong, string)> receipts, CancellationToken stop)
    {
        var random = new Random(seed);
        var clients = keys.ToDictionary(k => k.Key, k => Client(baseAddress, k.Value));
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var tenant = Tenants[random.Next(Tenants.Length)];
                var count = random.Next(1, 21);
                try
                {
                    var response = await clients[tenant].PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(count, i => ServerFixture.Event(actor: $"w{seed}-{i}"))), stop);
                    if (response.StatusCode != HttpStatusCode.Created)
                    {
                        continue;
                    }

                    // A receipt counts only once it has been read in full, as a client would hold it.
                    var body = await response.Content.ReadFromJsonAsync<JsonElement>(stop);
                    foreach (var r in body.GetProperty("receipts").EnumerateArray())
                    {
                        receipts.Add((tenant, r.GetProperty("id").GetGuid(), r.GetProperty("index").GetUInt64(), r.GetProperty("leafHash").GetString()!));
                    }
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
                {
                    // The server died mid-request: no receipt, no promise.
                    if (stop.IsCancellationRequested)
                    {
                        return;
                    }

                    await Task.Delay(10, CancellationToken.None);
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

    internal static async Task PollCheckpointsAsync(Uri baseAddress, Dictionary<string, string> keys, ConcurrentBag<(string, string)> checkpoints, CancellationToken stop)
    {
        var clients = keys.ToDictionary(k => k.Key, k => Client(baseAddress, k.Value));
        try
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var (tenant, client) in clients)
                {
                    try
                    {
                        var response = await client.GetAsync($"/v1/tenants/{tenant}/log/checkpoint", stop);
                        if (response.IsSuccessStatusCode)
                        {
                            checkpoints.Add((tenant, await response.Content.ReadAsStringAsync(stop)));
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                    {
                        if (stop.IsCancellationRequested)
                        {
                            return;
                        }
                    }
                }

                try
                {
                    await Task.Delay(40, stop);
                }
                catch (OperationCanceledException)
                {
                    return;
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

    /// <summary>The signed checkpoint <paramref name="note"/> is a prefix of <paramref name="latest"/>: verified with a consistency proof from the server.</summary>
    internal static async Task AssertConsistentAsync(HttpClient client, string tenant, string note, NoteVerifier verifier, Checkpoint latest)
    {
        var opened = Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var before);
        Assert.True(opened.IsValid, opened.Failure);
        Assert.True(before!.Size <= latest.Size, $"a checkpoint signed earlier ({before.Size}) is ahead of the log now ({latest.Size})");
        if (before.Size == 0)
        {
            Assert.Equal(MerkleHasher.EmptyRoot, before.Root);
            return;
        }

        var proof = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/log/proof/consistency?from={before.Size}&to={latest.Size}");
        var hashes = proof.GetProperty("hashes").EnumerateArray().Select(h => new Hash(Convert.FromBase64String(h.GetString()!))).ToArray();
        var result = ConsistencyProof.Verify(before.Size, latest.Size, hashes, before.Root, latest.Root);
        Assert.True(result.IsValid, $"{tenant}: checkpoint {before.Size} is not consistent with {latest.Size}: {result.Failure}");
    }

    internal static async Task<List<(ulong Index, Guid Id, string LeafHash)>> ListAllAsync(HttpClient client, string tenant)
    {
        await ServerFixture.WaitForProjectionAsync(client, tenant);
        var entries = new List<(ulong, Guid, string)>();
        string? cursor = null;
        do
        {
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/events?order=asc&limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}");
            entries.AddRange(page.GetProperty("items").EnumerateArray().Select(i => (
                i.GetProperty("index").GetUInt64(),
                Guid.Parse(i.GetProperty("event").GetProperty("id").GetString()!),
                i.GetProperty("leafHash").GetString()!)));
            cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
        }
        while (cursor is not null);
        return entries;
    }

    internal static HttpClient Client(Uri baseAddress, string key)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
