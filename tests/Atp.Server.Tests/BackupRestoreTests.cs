using System.Formats.Tar;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Audit;
using Atp.Server.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Backup, restore and rollback detection (issue 20 §3) over real server processes and the real <c>atp</c> binary on an
/// embedded cell: a backup taken while the server ingests restores into a new directory whose server signs exactly the
/// backed-up heads and passes <c>atp verify store</c>; restoring an older backup over a cell that already published a
/// larger checkpoint quarantines that tenant (nothing signed, appends refused, readiness degraded, an ops alert) while
/// the other tenant is served, until <c>atp admin accept-rollback</c>, which the platform audit log records.
/// </summary>
public sealed class BackupRestoreTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const string A = "backup-a";
    private const string B = "backup-b";
    private readonly string _root = Directory.CreateTempSubdirectory("atp-backup-").FullName;
    private readonly string _adminKey = ApiKeyFormat.Generate();
    private readonly Dictionary<string, string> _keys = [];

    private string Data => Path.Combine(_root, "data");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_backup_taken_while_the_server_ingests_restores_to_a_cell_that_signs_the_same_heads()
    {
        var archive = Path.Combine(_root, "cell.tar");
        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            await SetUpAsync(server);
            await AppendAsync(server, A, 10);
            await AppendAsync(server, B, 10);
            await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 10);

            using var stop = new CancellationTokenSource();
            var ingest = Task.Run(async () =>
            {
                var appended = 0;
                while (!stop.IsCancellationRequested)
                {
                    await AppendAsync(server, appended % 2 == 0 ? A : B, 5);
                    appended++;
                }

                return appended;
            });

            await Task.Delay(300);
            var backup = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "backup", "--data", Data, "--out", archive);
            await Task.Delay(300);
            await stop.CancelAsync();
            var batches = await ingest;
            output.WriteLine($"{batches} batches appended during the backup; {backup.Output}");
            Assert.True(backup.ExitCode == 0, backup.Error);
            Assert.True(batches > 2, "the server was not ingesting while the backup ran");
        }

        var heads = await TreeHeadsAsync(archive);
        Assert.True(heads[A].Size >= 10 && heads[B].Size >= 10);

        var restoredData = Path.Combine(_root, "restored");
        var restore = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "restore", "--from", archive, "--data", restoredData);
        Assert.True(restore.ExitCode == 0, restore.Error);

        await using (var server = await ChildServer.StartAsync(restoredData, _adminKey))
        {
            var verifier = NoteVerifier.Parse((await Anonymous(server).GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
            foreach (var tenant in new[] { A, B })
            {
                // The restored cell seals the backed-up head (if the backup caught it unsealed) with the restored key.
                var note = await ServerFixture.WaitForCheckpointAsync(Client(server, tenant), tenant, heads[tenant].Size);
                Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint).IsValid);
                Assert.Equal(heads[tenant].Size, checkpoint!.Size);
                Assert.Equal(heads[tenant].Root, checkpoint.Root.ToBase64());
            }

            // The restored cell keeps serving: a new append gets a checkpoint consistent with the restored head.
            await AppendAsync(server, A, 2);
            await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, heads[A].Size + 2);
            await server.StopAsync();
        }

        var verify = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "verify", "store", "--data", restoredData, "--no-progress");
        Assert.True(verify.ExitCode == 0, verify.Output + verify.Error);
        Assert.Contains("verified:", verify.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restoring_an_older_backup_quarantines_the_rolled_back_tenant_until_an_operator_accepts_it()
    {
        var archive = Path.Combine(_root, "older.tar");
        string signedA;
        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            await SetUpAsync(server);
            await AppendAsync(server, A, 4);
            await AppendAsync(server, B, 4);
            signedA = await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 4);
            await ServerFixture.WaitForCheckpointAsync(Client(server, B), B, 4);
            var backup = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "backup", "--data", Data, "--out", archive);
            Assert.True(backup.ExitCode == 0, backup.Error);

            // Published after the backup: the cell's clients may hold this checkpoint.
            await AppendAsync(server, A, 3);
            await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 7);
            await server.StopAsync();
        }

        var refused = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "restore", "--from", archive, "--data", Data);
        Assert.Equal(2, refused.ExitCode);
        var restore = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "restore", "--from", archive, "--data", Data, "--force");
        Assert.True(restore.ExitCode == 0, restore.Error);
        Assert.True(File.Exists(PublishedHeads.PathOf(Data)), "restore must keep the published-head record");

        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            using var client = Client(server, A);
            var problem = await ProblemAssert.IsProblemAsync(
                await client.PostAsync($"/v1/tenants/{A}/events", ServerFixture.Json(ServerFixture.Batch(2))), HttpStatusCode.ServiceUnavailable, "integrity-failure");
            output.WriteLine(problem.ToString());
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/v1/tenants/{A}/log/entries/4")).StatusCode);

            // Nothing signed for the rolled-back log over many sealer intervals; its older entries are still served.
            await Task.Delay(1000);
            Assert.Equal(signedA, await client.GetStringAsync($"/v1/tenants/{A}/log/checkpoint"));
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{A}/log/entries/3")).StatusCode);

            var ready = await (await Anonymous(server).GetAsync("/readyz")).Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("Degraded", ready.GetProperty("status").GetString());
            Assert.Equal([A], ready.GetProperty("ready").GetProperty("data").GetProperty("quarantinedTenants").EnumerateArray().Select(t => t.GetString()));

            var alert = await WaitForPlatformEventAsync(server, QuarantineAlarm.Action, A);
            Assert.Equal(PlatformEvents.AlertType, alert.GetProperty("type").GetString());
            Assert.Equal(TreeStateCheck.Rollback, alert.GetProperty("data").GetProperty("check").GetString());
            Assert.Contains("already published a checkpoint for 7", alert.GetProperty("data").GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Contains(server.Output, line => line.Contains("accept-rollback", StringComparison.Ordinal) && line.Contains(A, StringComparison.Ordinal));

            // The other tenant was not rolled back: it appends and gets checkpoints.
            await AppendAsync(server, B, 3);
            await ServerFixture.WaitForCheckpointAsync(Client(server, B), B, 7);
            await server.StopAsync();
        }

        var accept = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "admin", "accept-rollback", "--data", Data, "--tenant", A);
        Assert.True(accept.ExitCode == 0, accept.Error);

        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            var ready = await (await Anonymous(server).GetAsync("/readyz")).Content.ReadFromJsonAsync<JsonElement>();
            Assert.False(ready.GetProperty("ready").GetProperty("data").TryGetProperty("quarantinedTenants", out _), ready.ToString());

            await AppendAsync(server, A, 2);
            var note = await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 6);
            Assert.True(Checkpoint.TryParse(SignedNoteText(note), out var checkpoint, out _));
            Assert.Equal(6UL, checkpoint.Size);

            var accepted = await WaitForPlatformEventAsync(server, RollbackGuard.AcceptedAction, A);
            Assert.Equal(PlatformEvents.AdminType, accepted.GetProperty("type").GetString());
            Assert.Equal("7", accepted.GetProperty("data").GetProperty("publishedSize").GetString());
            Assert.Equal("4", accepted.GetProperty("data").GetProperty("storedSize").GetString());
            await server.StopAsync();
        }

        // Applied once: the next start neither quarantines the tenant nor records the acceptance again.
        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            await AppendAsync(server, A, 1);
            await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 7);
            Assert.Single(await PlatformEventsAsync(server, RollbackGuard.AcceptedAction, A));
        }
    }

    [Fact]
    public async Task A_stored_tree_whose_root_differs_from_the_published_one_at_that_size_is_quarantined()
    {
        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            await SetUpAsync(server);
            await AppendAsync(server, A, 5);
            await AppendAsync(server, B, 5);
            await ServerFixture.WaitForCheckpointAsync(Client(server, A), A, 5);
            await ServerFixture.WaitForCheckpointAsync(Client(server, B), B, 5);
            await server.StopAsync();
        }

        // As if this cell had published a different tree of size 3 for A (the store now holds another log): a later
        // line for the same tenant, as the sealer appends them.
        var other = MerkleHasher.HashLeaf(Encoding.UTF8.GetBytes("another log"));
        await File.AppendAllTextAsync(PublishedHeads.PathOf(Data), $"rebase {A} 3 {other.ToBase64()}\n");

        await using (var server = await ChildServer.StartAsync(Data, _adminKey))
        {
            using var client = Client(server, A);
            await ProblemAssert.IsProblemAsync(
                await client.PostAsync($"/v1/tenants/{A}/events", ServerFixture.Json(ServerFixture.Batch(1))), HttpStatusCode.ServiceUnavailable, "integrity-failure");
            var alert = await WaitForPlatformEventAsync(server, QuarantineAlarm.Action, A);
            Assert.Equal(TreeStateCheck.Rollback, alert.GetProperty("data").GetProperty("check").GetString());
            Assert.Contains("root at size 3 differs", alert.GetProperty("data").GetProperty("detail").GetString(), StringComparison.Ordinal);
            await AppendAsync(server, B, 1);
            await ServerFixture.WaitForCheckpointAsync(Client(server, B), B, 6);
        }
    }

    private static string SignedNoteText(string note)
    {
        Assert.True(SignedNote.TryParse(note, out var signed, out var error), error);
        return signed.Text;
    }

    private async Task SetUpAsync(ChildServer server)
    {
        using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
        foreach (var tenant in new[] { A, B })
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
            var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "backup", scopes = new[] { "events:write", "events:read" } });
            _keys[tenant] = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        }
    }

    private HttpClient Client(ChildServer server, string tenant) => CrashTests.Client(server.BaseAddress, _keys[tenant]);

    private static HttpClient Anonymous(ChildServer server) => new() { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };

    private async Task AppendAsync(ChildServer server, string tenant, int count)
    {
        using var client = Client(server, tenant);
        var response = await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(count)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    private async Task<JsonElement> WaitForPlatformEventAsync(ChildServer server, string action, string tenant)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (await PlatformEventsAsync(server, action, tenant) is [var found])
            {
                return found;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no {action} event for {tenant} in the platform log within 20 s");
            await Task.Delay(100);
        }
    }

    private async Task<List<JsonElement>> PlatformEventsAsync(ChildServer server, string action, string tenant)
    {
        using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
        var page = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/{PlatformAuditLog.TenantId}/events?action={action}&limit=100");
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
            .Where(e => e.GetProperty("targets").EnumerateArray().Any(t => t.GetProperty("id").GetString() == tenant))
            .Select(e => e.Clone())];
    }

    private static async Task<Dictionary<string, (ulong Size, string Root)>> TreeHeadsAsync(string archive)
    {
        await using var file = File.OpenRead(archive);
        await using var tar = new TarReader(file);
        var entry = await tar.GetNextEntryAsync();
        Assert.Equal("atp-backup.json", entry!.Name);
        var manifest = await JsonSerializer.DeserializeAsync<JsonElement>(entry.DataStream!);
        return manifest.GetProperty("treeHeads").EnumerateArray().ToDictionary(
            h => h.GetProperty("tenant").GetString()!,
            h => (h.GetProperty("size").GetUInt64(), h.GetProperty("root").GetString()!));
    }
}
