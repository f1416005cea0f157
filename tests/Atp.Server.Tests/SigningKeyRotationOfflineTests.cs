using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// Key rotation across real process restarts of an embedded cell, and the offline tools on its data directory: the
/// keyring survives a restart, <c>atp export</c> signs with the key the server would, <c>atp verify store</c> verifies
/// every stored checkpoint (signed by the old key, by both, by the new key) and <c>atp verify bundle</c> the export.
/// </summary>
public sealed class SigningKeyRotationOfflineTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("atp-keyrot-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task A_rotated_embedded_cell_restarts_with_its_keys_and_its_data_verifies_offline()
    {
        var data = Path.Combine(_work, "cell");
        var adminKey = ApiKeyFormat.Generate();
        string oldKey;
        string newKey;
        string oldKeyId;
        string writeKey;
        await using (var cell = await ChildServer.StartAsync(data, adminKey))
        {
            using var admin = CrashTests.Client(cell.BaseAddress, adminKey);
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = "acme", name = "acme" })).StatusCode);
            writeKey = await OfflineCellTests.CreateKeyAsync(admin);
            await IngestAsync(cell.BaseAddress, writeKey, 4, 4);
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/v1/log/keys/rotations", null)).StatusCode);
            var keys = (await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys");
            oldKey = Key(keys, "retiring").GetProperty("verifierKey").GetString()!;
            oldKeyId = Key(keys, "retiring").GetProperty("keyId").GetString()!;
            newKey = Key(keys, "next").GetProperty("verifierKey").GetString()!;
            await IngestAsync(cell.BaseAddress, writeKey, 3, 7);
            await cell.StopAsync();
        }

        // A real restart: the rotation is still under way, both keys sign.
        await using (var cell = await ChildServer.StartAsync(data, adminKey))
        {
            using var admin = CrashTests.Client(cell.BaseAddress, adminKey);
            var keys = (await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys");
            Assert.Equal(oldKey, Key(keys, "retiring").GetProperty("verifierKey").GetString());
            Assert.Equal(newKey, Key(keys, "next").GetProperty("verifierKey").GetString());
            Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/v1/log/keys/{oldKeyId}/retire", null)).StatusCode);
            await IngestAsync(cell.BaseAddress, writeKey, 2, 9);
            await cell.StopAsync();
        }

        var bundle = Path.Combine(_work, "acme.tar");
        await OfflineCellTests.AssertAtpAsync(0, $"signed by {newKey}", "export", "--data", data, "--tenant", "acme", "--out", bundle);
        await OfflineCellTests.AssertAtpAsync(0, "verified", "verify", "bundle", bundle, "--key", newKey, "--no-progress");
        await OfflineCellTests.AssertAtpAsync(0, "verified", "verify", "store", "--data", data, "--no-progress");
        await OfflineCellTests.AssertAtpAsync(1, "FAILED", "verify", "bundle", bundle, "--key", oldKey, "--no-progress");
    }

    private static JsonElement Key(JsonElement keys, string status) => keys.EnumerateArray().Single(k => k.GetProperty("status").GetString() == status);

    private static async Task IngestAsync(Uri baseAddress, string key, int count, ulong size)
    {
        using var client = CrashTests.Client(baseAddress, key);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(count)))).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(client, "acme", size);
    }
}
