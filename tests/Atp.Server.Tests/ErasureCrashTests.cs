using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// An erasure is one transaction (the subject's data key destroyed, its tombstone appended): a server process is
/// SIGKILLed while it erases subjects one after another under concurrent ingest, restarted, and every subject must be
/// either erased with its tombstone or untouched with its key, never one without the other.
/// </summary>
public sealed class ErasureCrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Subjects = 40;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_SIGKILL_during_erasures_leaves_each_subject_erased_with_its_tombstone_or_untouched(int seed)
    {
        var random = new Random(seed);
        var directory = Directory.CreateTempSubdirectory("atp-erasure-crash-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        try
        {
            string[] storage = [.. await TestStorage.NewStoreArgumentsAsync(), "--Atp:Classification:SealEnvelopeFields=true"];
            var erased = new ConcurrentBag<string>();
            var keys = new Dictionary<string, string>();
            await using (var server = await ChildServer.StartAsync(directory, adminKey, storage))
            {
                using var admin = CrashTests.Client(server.BaseAddress, adminKey);
                foreach (var tenant in new[] { "crash-a", "crash-b" })
                {
                    Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
                    var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "crash", scopes = new[] { "events:write", "events:read", "tenant:admin" } });
                    keys[tenant] = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                }

                // One event per subject to erase; its IP is sealed under the subject's own data key.
                using var eraser = CrashTests.Client(server.BaseAddress, keys["crash-a"]);
                var batch = ServerFixture.Batch(Subjects, i => ServerFixture.Event(actor: Subject(i)));
                Assert.Equal(HttpStatusCode.Created, (await eraser.PostAsync("/v1/tenants/crash-a/events", ServerFixture.Json(batch))).StatusCode);

                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 4)
                    .Select(w => CrashTests.WriteUntilStoppedAsync(server.BaseAddress, keys, seed * 100 + w, new ConcurrentBag<(string, Guid, ulong, string)>(), stop.Token))
                    .ToList();
                var erasing = EraseUntilStoppedAsync(eraser, erased, stop.Token);

                // The kill lands at a random moment after the first erasure was answered.
                var waitingSince = DateTime.UtcNow;
                while (erased.IsEmpty && DateTime.UtcNow - waitingSince < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(10);
                }

                await Task.Delay(random.Next(200, 1200));
                server.Kill();
                await stop.CancelAsync();
                await Task.WhenAll([.. writers, erasing]);
            }

            Assert.False(erased.IsEmpty, "no erasure was answered before the crash: the test proved nothing");

            // Restarted (recovery runs) and stopped cleanly, then the store is read as it is.
            await using (var restarted = await ChildServer.StartAsync(directory, adminKey, storage))
            {
                using var client = CrashTests.Client(restarted.BaseAddress, keys["crash-a"]);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenants/crash-a")).StatusCode);
            }

            var (leaves, storedKeys) = await ClassifiedFieldTests.ReadStoredAsync(directory, storage);
            var subjectKeys = new Dictionary<string, string>(StringComparer.Ordinal);
            var tombstoned = new HashSet<string>(StringComparer.Ordinal);
            var sealedUnder = new HashSet<string>(StringComparer.Ordinal);
            foreach (var leaf in leaves)
            {
                using var parsed = JsonDocument.Parse(leaf);
                var root = parsed.RootElement;
                if (root.GetProperty("type").GetString() == "atp.erasure.v1")
                {
                    var data = root.GetProperty("data");
                    Assert.True(data.GetProperty("keyDestroyed").GetBoolean(), "an erasure of a subject that had a key recorded none");
                    Assert.True(tombstoned.Add(data.GetProperty("subjectKeyId").GetString()!), "a subject was erased twice");
                    continue;
                }

                if (root.TryGetProperty("context", out var context) && context.TryGetProperty("ip", out var ip) && FieldToken.TryParse(ip.GetString(), out var keyId, out _))
                {
                    sealedUnder.Add(keyId);
                    var actor = root.GetProperty("actor").GetProperty("id").GetString()!;
                    if (actor.StartsWith("erase-me-", StringComparison.Ordinal))
                    {
                        subjectKeys[actor] = keyId;
                    }
                }
            }

            Assert.Equal(Subjects, subjectKeys.Count);
            foreach (var (subject, keyId) in subjectKeys)
            {
                var hasTombstone = tombstoned.Contains(keyId);
                var hasKey = storedKeys.ContainsKey(keyId);
                Assert.True(hasTombstone != hasKey, $"{subject}: tombstone {hasTombstone}, key {hasKey} — a half-erased subject");
            }

            Assert.Subset(tombstoned, erased.ToHashSet(StringComparer.Ordinal));

            // Every other sealed leaf still has its key: the crash destroyed nothing but what was erased.
            Assert.All(sealedUnder.Where(k => !tombstoned.Contains(k)), k => Assert.True(storedKeys.ContainsKey(k), $"key {k} was lost without an erasure"));
            output.WriteLine($"seed {seed}: {erased.Count} erasures answered, {tombstoned.Count} tombstones stored, {Subjects - tombstoned.Count} subjects untouched");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Subject(int i) => $"erase-me-{i}";

    private static async Task EraseUntilStoppedAsync(HttpClient client, ConcurrentBag<string> erased, CancellationToken stop)
    {
        for (var i = 0; i < Subjects && !stop.IsCancellationRequested; i++)
        {
            try
            {
                var response = await client.PostAsJsonAsync("/v1/tenants/crash-a/erasures", new { subject = Subject(i), reason = "crash test" }, stop);
                if (response.StatusCode == HttpStatusCode.Created)
                {
                    erased.Add((await response.Content.ReadFromJsonAsync<JsonElement>(stop)).GetProperty("subjectKeyId").GetString()!);
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
            {
                // The server died mid-request: no answer, no promise.
                return;
            }
        }
    }
}
