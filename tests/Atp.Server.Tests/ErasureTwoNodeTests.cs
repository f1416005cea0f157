using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// An erasure on one node of a PostgreSQL cell reaches the other nodes' copies of the key: two server processes on one
/// database, the subject's key cached on the second; after the first erases the subject, the second stops opening its
/// fields within the key ring's re-check interval, and its next event for the subject is sealed under a new, stored key
/// that the first node opens — never under the destroyed one.
/// </summary>
[Trait("Engine", "postgres")]
public sealed class ErasureTwoNodeTests
{
    [Fact]
    public async Task An_erasure_on_one_node_stops_the_other_node_opening_or_sealing_with_the_destroyed_key()
    {
        var directory = Directory.CreateTempSubdirectory("atp-erasure-two-nodes-").FullName;
        var adminKey = ApiKeyFormat.Generate();
        string[] storage = [.. await TestStorage.NewPostgresStoreArgumentsAsync(), "--Atp:Classification:SealEnvelopeFields=true"];
        try
        {
            await using var first = await ChildServer.StartAsync(directory, adminKey, storage);
            await using var second = await ChildServer.StartAsync(directory, adminKey, storage);
            using var platform = CrashTests.Client(first.BaseAddress, adminKey);
            Assert.Equal(HttpStatusCode.Created, (await platform.PostAsJsonAsync("/v1/tenants", new { id = "acme", name = "acme" })).StatusCode);
            var created = await platform.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "dpo", scopes = new[] { "events:write", "events:read", "tenant:admin", "pii:read" } });
            var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
            using var onFirst = CrashTests.Client(first.BaseAddress, key);
            using var onSecond = CrashTests.Client(second.BaseAddress, key);
            var marker = Guid.NewGuid().ToString("N")[..10];

            // The second node seals the subject's event and opens it: the subject's key is in its memory.
            var before = await IngestAsync(onSecond, $"Person {marker} before");
            Assert.Contains($"Person {marker} before", await onSecond.GetStringAsync($"/v1/tenants/acme/events/{before}"), StringComparison.Ordinal);

            var erasure = await onFirst.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "subject-s", reason = "request #9" });
            Assert.Equal(HttpStatusCode.Created, erasure.StatusCode);
            var keyId = (await erasure.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("subjectKeyId").GetString();

            // The second node stops opening it within the re-check interval (plus the time a request takes here).
            var clock = Stopwatch.StartNew();
            while ((await onSecond.GetStringAsync($"/v1/tenants/acme/events/{before}")).Contains($"Person {marker} before", StringComparison.Ordinal))
            {
                Assert.True(clock.Elapsed < DataKeyRing.RecheckAfter + TimeSpan.FromSeconds(10), $"the second node still opened the erased subject's field after {clock.Elapsed}");
                await Task.Delay(200);
            }

            // Its next event for the subject gets a new key, stored, so the first node opens it; the old token stays sealed.
            await Task.Delay(DataKeyRing.RecheckAfter);
            var after = await IngestAsync(onSecond, $"Person {marker} after");
            using (var leaf = JsonDocument.Parse(await onFirst.GetByteArrayAsync("/v1/tenants/acme/log/entries/2")))
            {
                Assert.True(FieldToken.TryParse(leaf.RootElement.GetProperty("actor").GetProperty("name").GetString(), out var newKeyId, out _));
                Assert.Equal(keyId, newKeyId);
            }

            Assert.Contains($"Person {marker} after", await onFirst.GetStringAsync($"/v1/tenants/acme/events/{after}"), StringComparison.Ordinal);
            Assert.DoesNotContain($"Person {marker} before", await onFirst.GetStringAsync($"/v1/tenants/acme/events/{before}"), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<string> IngestAsync(HttpClient client, string name)
    {
        var body = "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
            + $"\"actor\":{{\"type\":\"user\",\"id\":\"subject-s\",\"name\":{JsonSerializer.Serialize(name)}}},"
            + "\"action\":\"document.update\",\"outcome\":\"success\"}";
        var response = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts")[0].GetProperty("id").GetString()!;
    }
}
