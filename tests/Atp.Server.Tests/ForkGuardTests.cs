using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Audit;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Atp.Server.Tests;

/// <summary>
/// Never sign a fork (issue 21, finding 1), over real server processes on both engines: the store is damaged while the
/// server is stopped, and after the restart the damaged tenant's log is quarantined — appends refused with
/// <c>integrity-failure</c>, no new checkpoint, an ops alert in the platform log, <c>/readyz</c> naming it — while the
/// other tenant keeps appending and getting checkpoints consistent with its earlier ones.
/// </summary>
public sealed class ForkGuardTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string A = "fork-a";
    private const string B = "fork-b";

    // Long enough that the first pass at start is the only one: appends made under it stay unsealed.
    private const string NoSealing = "--Atp:Integrity:CheckpointInterval=01:00:00";

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_flipped_bit_in_a_right_edge_node_quarantines_that_tenant_after_restart(string engine)
    {
        await using var cell = await Cell.CreateAsync(engine);
        NoteVerifier verifier;
        string signedA, signedB;
        await using (var server = await cell.StartAsync())
        {
            verifier = await cell.SetUpAsync(server);
            await cell.AppendAsync(server, A, 6);
            await cell.AppendAsync(server, B, 5);
            signedA = await ServerFixture.WaitForCheckpointAsync(cell.Client(server, A), A, 6);
            signedB = await ServerFixture.WaitForCheckpointAsync(cell.Client(server, B), B, 5);
        }

        // Size 6: the edge is node (level 2, index 0) — stored with leaf 3 — and node (level 1, index 2). Flip the first.
        var edge = CompactRange.EdgeNodes(6);
        Assert.Equal(new NodeId(2, 0), edge[0]);
        await cell.FlipNodeBitAsync(A, edge[0]);

        await using (var server = await cell.StartAsync())
        {
            await AssertQuarantinedAsync(cell, server, A, signedA, 6, TreeStateCheck.Load);
            await AssertServedAsync(cell, server, B, signedB, 5, verifier);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task An_altered_tree_head_root_is_never_signed(string engine)
    {
        await using var cell = await Cell.CreateAsync(engine);
        NoteVerifier verifier;
        string signedA, signedB;
        await using (var server = await cell.StartAsync())
        {
            verifier = await cell.SetUpAsync(server);
            await cell.AppendAsync(server, A, 4);
            await cell.AppendAsync(server, B, 4);
            signedA = await ServerFixture.WaitForCheckpointAsync(cell.Client(server, A), A, 4);
            signedB = await ServerFixture.WaitForCheckpointAsync(cell.Client(server, B), B, 4);
        }

        // Appends that no checkpoint covers yet: the next start's sealer is the first to look at the head.
        await using (var server = await cell.StartAsync(NoSealing))
        {
            await cell.AppendAsync(server, A, 3);
            await cell.AppendAsync(server, B, 3);
        }

        await cell.AlterHeadRootAsync(A);

        await using (var server = await cell.StartAsync())
        {
            await AssertQuarantinedAsync(cell, server, A, signedA, 7, TreeStateCheck.Seal);
            await AssertServedAsync(cell, server, B, signedB, 7, verifier);
        }
    }

    private async Task AssertQuarantinedAsync(Cell cell, ChildServer server, string tenant, string signedBefore, ulong size, string check)
    {
        using var client = cell.Client(server, tenant);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var refused = await ProblemAssert.IsProblemAsync(
                await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(2))), HttpStatusCode.ServiceUnavailable, "integrity-failure");
            output.WriteLine($"{tenant}: {refused.GetProperty("detail").GetString()}");
        }

        // Nothing stored: no entry past the old size.
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/v1/tenants/{tenant}/log/entries/{size}")).StatusCode);

        // Nothing signed, over many sealer intervals (50 ms).
        await Task.Delay(1000);
        Assert.Equal(signedBefore, await client.GetStringAsync($"/v1/tenants/{tenant}/log/checkpoint"));

        // Reads are still served.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/tenants/{tenant}/log/entries/0")).StatusCode);

        var ready = await cell.Anonymous(server).GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = await ready.Content.ReadFromJsonAsync<JsonElement>();
        output.WriteLine(body.ToString());
        Assert.Equal("Degraded", body.GetProperty("status").GetString());
        Assert.Equal([tenant], body.GetProperty("ready").GetProperty("data").GetProperty("quarantinedTenants").EnumerateArray().Select(t => t.GetString()));

        var alert = await cell.WaitForAlertAsync(server, tenant);
        Assert.Equal(check, alert.GetProperty("data").GetProperty("check").GetString());
        Assert.False(string.IsNullOrEmpty(alert.GetProperty("data").GetProperty("detail").GetString()));
    }

    // The healthy tenant appends, gets new checkpoints consistent with the one signed before the damage, and every one
    // of its old leaves still proves into the new checkpoint.
    private static async Task AssertServedAsync(Cell cell, ChildServer server, string tenant, string signedBefore, ulong size, NoteVerifier verifier)
    {
        using var client = cell.Client(server, tenant);
        await cell.AppendAsync(server, tenant, 3);
        var note = await ServerFixture.WaitForCheckpointAsync(client, tenant, size + 3);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var latest).IsValid);
        await CrashTests.AssertConsistentAsync(client, tenant, signedBefore, verifier, latest!);
        for (ulong i = 0; i < size; i++)
        {
            var leaf = await client.GetByteArrayAsync($"/v1/tenants/{tenant}/log/entries/{i}");
            var proof = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/log/proof/inclusion?index={i}&size={latest!.Size}");
            var hashes = proof.GetProperty("hashes").EnumerateArray().Select(h => new Hash(Convert.FromBase64String(h.GetString()!))).ToArray();
            var result = InclusionProof.Verify(i, latest.Size, MerkleHasher.HashLeaf(leaf), hashes, latest.Root);
            Assert.True(result.IsValid, $"{tenant} leaf {i}: {result.Failure}");
        }
    }

    /// <summary>One cell's storage across restarts of its server process, and the edits a fault makes to it.</summary>
    private sealed class Cell : IAsyncDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("atp-fork-").FullName;
        private readonly string _adminKey = ApiKeyFormat.Generate();
        private readonly Dictionary<string, string> _keys = [];
        private string[] _storage = [];
        private string? _ownerConnectionString;

        public static async Task<Cell> CreateAsync(string engine)
        {
            var cell = new Cell();
            if (engine == "postgres")
            {
                cell._storage = await TestStorage.NewPostgresStoreArgumentsAsync();
                cell._ownerConnectionString = cell._storage.Single(a => a.StartsWith("--ConnectionStrings:AtpAdmin=", StringComparison.Ordinal)).Split('=', 2)[1];
            }

            return cell;
        }

        public Task<ChildServer> StartAsync(params string[] extra) => ChildServer.StartAsync(_directory, _adminKey, [.. _storage, .. extra]);

        public async Task<NoteVerifier> SetUpAsync(ChildServer server)
        {
            using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
            foreach (var tenant in new[] { A, B })
            {
                Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
                var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "fork", scopes = new[] { "events:write", "events:read" } });
                _keys[tenant] = (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
            }

            return NoteVerifier.Parse((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        }

        public HttpClient Client(ChildServer server, string tenant) => CrashTests.Client(server.BaseAddress, _keys[tenant]);

        public HttpClient Anonymous(ChildServer server) => new() { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };

        public async Task AppendAsync(ChildServer server, string tenant, int count)
        {
            using var client = Client(server, tenant);
            var response = await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(count)));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        /// <summary>The platform log's tree-state alert naming <paramref name="tenant"/>, once projected.</summary>
        public async Task<JsonElement> WaitForAlertAsync(ChildServer server, string tenant)
        {
            using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (true)
            {
                var page = await admin.GetFromJsonAsync<JsonElement>($"/v1/tenants/{PlatformAuditLog.TenantId}/events?action=alert.tree-state-mismatch&limit=100");
                var alerts = page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
                    .Where(e => e.GetProperty("type").GetString() == PlatformEvents.AlertType
                        && e.GetProperty("targets").EnumerateArray().Any(t => t.GetProperty("id").GetString() == tenant))
                    .ToList();
                if (alerts.Count > 0)
                {
                    return Assert.Single(alerts).Clone();
                }

                Assert.True(DateTime.UtcNow < deadline, $"no tree-state alert for {tenant} in the platform log within 20 s");
                await Task.Delay(100);
            }
        }

        /// <summary>Flips the lowest bit of a stored Merkle node (level ≥ 1) of the tenant, behind the stopped server's back.</summary>
        public async Task FlipNodeBitAsync(string tenant, NodeId node)
        {
            var leaf = ((node.Index + 1) << node.Level) - 1;
            var offset = (node.Level - 1) * Hash.Size;
            if (_ownerConnectionString is { } owner)
            {
                await ExecuteAsOwnerAsync(owner, $"UPDATE atp.log_entries SET nodes = set_byte(nodes, {offset}, get_byte(nodes, {offset}) # 1) WHERE tenant_id = '{tenant}' AND idx = {leaf}");
                return;
            }

            using var connection = OpenSqlite();
            var row = (SqliteNumber(connection, tenant) << 40) | (long)leaf;
            using var read = connection.CreateCommand();
            read.CommandText = $"SELECT nodes FROM log_entries WHERE id = {row}";
            var nodes = (byte[])read.ExecuteScalar()!;
            nodes[offset] ^= 1;
            using var write = connection.CreateCommand();
            write.CommandText = $"UPDATE log_entries SET nodes = $nodes WHERE id = {row}";
            write.Parameters.AddWithValue("$nodes", nodes);
            Assert.Equal(1, write.ExecuteNonQuery());
        }

        /// <summary>Flips the lowest bit of the tenant's stored tree head root.</summary>
        public async Task AlterHeadRootAsync(string tenant)
        {
            if (_ownerConnectionString is { } owner)
            {
                await ExecuteAsOwnerAsync(owner, $"UPDATE atp.tree_heads SET root = set_byte(root, 0, get_byte(root, 0) # 1) WHERE tenant_id = '{tenant}'");
                return;
            }

            using var connection = OpenSqlite();
            using var read = connection.CreateCommand();
            read.CommandText = $"SELECT root FROM tree_heads WHERE tenant_id = '{tenant}'";
            var root = (byte[])read.ExecuteScalar()!;
            root[0] ^= 1;
            using var write = connection.CreateCommand();
            write.CommandText = $"UPDATE tree_heads SET root = $root WHERE tenant_id = '{tenant}'";
            write.Parameters.AddWithValue("$root", root);
            Assert.Equal(1, write.ExecuteNonQuery());
        }

        public ValueTask DisposeAsync()
        {
            Directory.Delete(_directory, recursive: true);
            return ValueTask.CompletedTask;
        }

        private SqliteConnection OpenSqlite()
        {
            var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString());
            connection.Open();
            return connection;
        }

        private static long SqliteNumber(SqliteConnection connection, string tenant)
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT num FROM tenants WHERE id = '{tenant}'";
            return (long)command.ExecuteScalar()!;
        }

        private static async Task ExecuteAsOwnerAsync(string connectionString, string sql)
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
    }
}
