using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Microsoft.Data.Sqlite;

namespace Atp.Server.Tests;

/// <summary>
/// The embedded engine's read models (<c>atp-read.db</c>) are derived data: deleted, truncated, with a damaged page or
/// a byte flip SQLite's own checks miss, the server starts, keeps ingesting, answers search with 503
/// projection-rebuilding (never 500 and never a silently short page) and rebuilds them from the log in the
/// background. Real child processes; the files are edited while the server is stopped.
/// </summary>
public sealed class ReadModelRecoveryTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private const string Tenant = "recover";
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-readmodel-").FullName;
    private readonly string _adminKey = ApiKeyFormat.Generate();
    private string _key = string.Empty;

    private string ReadModelPath => Path.Combine(_directory, "atp-read.db");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task After_atp_read_db_is_deleted_projection_status_is_exact_and_every_search_holds_the_prefix_it_claims()
    {
        const int count = 40_000;
        await using (var server = await StartWithEventsAsync(count))
        {
            server.Kill();
        }

        foreach (var file in Directory.GetFiles(_directory, "atp-read.db*"))
        {
            File.Delete(file);
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey);
        using var client = CrashTests.Client(restarted.BaseAddress, _key);

        // A paged read started during the rebuild must return exactly the prefix its first page claims: it starts
        // once part of the log is projected (or, should the rebuild finish first, at the end).
        Task<(ulong Snapshot, List<ulong> Indexes)>? walk = null;
        var random = new Random(7);
        var lastProjected = 0UL;
        var probesBelowSnapshot = 0;
        var statuses = 0;
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "the read models did not catch up within 3 minutes");
            var status = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/projection");
            statuses++;
            var projected = status.GetProperty("projectedSize").GetUInt64();
            var treeSize = status.GetProperty("treeSize").GetUInt64();
            Assert.Equal((ulong)count, treeSize);
            Assert.True(projected >= lastProjected, $"projectedSize went back from {lastProjected} to {projected}");
            lastProjected = projected;

            // Any entry below a search's snapshot must be in it: probe single entries by their occurrence time.
            var index = random.Next(count);
            var probe = await client.GetFromJsonAsync<JsonElement>(
                $"/v1/tenants/{Tenant}/events?from={Uri.EscapeDataString(Start.AddSeconds(index).ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(Start.AddSeconds(index + 1).ToString("O", CultureInfo.InvariantCulture))}");
            if ((ulong)index < probe.GetProperty("snapshot").GetUInt64())
            {
                probesBelowSnapshot++;
                Assert.Equal((ulong)index, Assert.Single(probe.GetProperty("items").EnumerateArray()).GetProperty("index").GetUInt64());
            }

            if (status.GetProperty("complete").GetBoolean())
            {
                Assert.Equal(treeSize, projected);
                break;
            }

            walk ??= projected > 0 ? WalkAsync(client, pageSize: 1000) : null;

            // The projector runs at a lowered priority: polling flat out on two cores would mostly measure that.
            await Task.Delay(20);
        }

        var (snapshot, indexes) = await (walk ?? WalkAsync(client, pageSize: 1000));
        output.WriteLine($"{statuses} status reads and {probesBelowSnapshot} probes below a snapshot during the rebuild; the walk started at snapshot {snapshot}");
        Assert.Equal(Enumerable.Range(0, (int)snapshot).Select(i => (ulong)i), indexes.Order());

        // Once complete, a search covers the whole log.
        var (finalSnapshot, all) = await WalkAsync(client, pageSize: 1000);
        Assert.Equal((ulong)count, finalSnapshot);
        Assert.Equal(count, all.Distinct().Count());
    }

    [Fact]
    public async Task A_truncated_atp_read_db_is_moved_aside_at_start_and_rebuilt_while_ingest_goes_on()
    {
        const int count = 5_000;
        await using (var server = await StartWithEventsAsync(count))
        {
            server.Kill();
        }

        CheckpointReadModels();
        var length = new FileInfo(ReadModelPath).Length;
        using (var file = new FileStream(ReadModelPath, FileMode.Open, FileAccess.Write))
        {
            file.SetLength(length / 2);
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey);
        using var client = CrashTests.Client(restarted.BaseAddress, _key);
        Assert.Equal(HttpStatusCode.Created, (await PostBatchAsync(client, count, 1)).StatusCode);

        await AssertRebuiltAsync(client, restarted, count + 1);
    }

    [Fact]
    public async Task A_damaged_page_of_atp_read_db_is_detected_and_search_answers_503_until_the_rebuild_caught_up()
    {
        const int count = 5_000;
        await using (var server = await StartWithEventsAsync(count))
        {
            server.Kill();
        }

        CheckpointReadModels();
        var page = RootPageOf("event_index_time");
        var garbage = new byte[4096];
        new Random(11).NextBytes(garbage);
        using (var file = new FileStream(ReadModelPath, FileMode.Open, FileAccess.Write))
        {
            file.Position = (page - 1) * 4096L;
            file.Write(garbage);
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey);
        using var client = CrashTests.Client(restarted.BaseAddress, _key);
        await AssertRebuiltAsync(client, restarted, count);
    }

    [Fact]
    public async Task A_same_length_byte_flip_that_SQLite_does_not_notice_is_found_against_the_log_and_rebuilt()
    {
        const int count = 2_000;
        await using (var server = await StartWithEventsAsync(count, flagged: 1234))
        {
            server.Kill();
        }

        CheckpointReadModels();
        var bytes = File.ReadAllBytes(ReadModelPath);
        var needle = "flip.target"u8.ToArray();
        var flips = 0;
        for (var i = bytes.AsSpan().IndexOf(needle); i >= 0; i = bytes.AsSpan().IndexOf(needle))
        {
            bytes[i] = (byte)'g';
            flips++;
        }

        Assert.True(flips >= 1, "the action is not in the file");
        File.WriteAllBytes(ReadModelPath, bytes);
        using (var check = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ReadModelPath, Pooling = false }.ToString()))
        {
            check.Open();
            using var command = check.CreateCommand();
            command.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", command.ExecuteScalar());
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey);
        using var client = CrashTests.Client(restarted.BaseAddress, _key);
        await AssertRebuiltAsync(client, restarted, count);
        var found = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?action=flip.target");
        Assert.Equal(1234UL, Assert.Single(found.GetProperty("items").EnumerateArray()).GetProperty("index").GetUInt64());
    }

    [Fact]
    public async Task A_byte_flip_in_an_indexed_actor_id_that_makes_search_miss_hits_is_found_by_the_read_model_sweep_and_rebuilt()
    {
        const int count = 200;
        string[] actors = ["actor-alpha", "actor-bravo", "actor-charlie", "actor-delta"];
        const string victim = "actor-delta";
        var expected = Enumerable.Range(0, count).Where(i => actors[i % actors.Length] == victim).Select(i => (ulong)i).ToList();
        string[] sweepOff = ["--Atp:Query:ReadModelSweep:Enabled=false"];
        await using (var server = await ChildServer.StartAsync(_directory, _adminKey, sweepOff))
        {
            using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
            _key = await CreateTenantAsync(admin, Tenant);
            using var client = CrashTests.Client(server.BaseAddress, _key);
            var body = new StringBuilder("{\"events\":[");
            for (var i = 0; i < count; i++)
            {
                body.Append(CultureInfo.InvariantCulture, $"{{\"type\":\"acme.audit.v1\",\"occurredAt\":\"{Start.AddSeconds(i):yyyy-MM-dd'T'HH:mm:ss'Z'}\",\"actor\":{{\"type\":\"user\",\"id\":\"{actors[i % actors.Length]}\"}},\"action\":\"document.read\",\"outcome\":\"success\"}}");
                body.Append(i + 1 < count ? "," : "]}");
            }

            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync($"/v1/tenants/{Tenant}/events", new StringContent(body.ToString(), Encoding.UTF8, "application/json"))).StatusCode);
            await WaitCompleteAsync(client, Tenant);
            Assert.Equal(expected, await ActorHitsAsync(client, victim));
            server.Kill();
        }

        // Same length, one byte: "actor-delta" becomes "actor-deltb" in the row and in the actor index alike.
        CheckpointReadModels();
        var bytes = File.ReadAllBytes(ReadModelPath);
        var needle = Encoding.UTF8.GetBytes(victim);
        var flips = 0;
        for (var i = bytes.AsSpan().IndexOf(needle); i >= 0; i = bytes.AsSpan().IndexOf(needle))
        {
            bytes[i + needle.Length - 1] = (byte)'b';
            flips++;
        }

        Assert.True(flips >= 1, "the actor id is not in the file");
        File.WriteAllBytes(ReadModelPath, bytes);
        using (var check = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ReadModelPath, Pooling = false }.ToString()))
        {
            check.Open();
            using var command = check.CreateCommand();
            command.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", command.ExecuteScalar());
        }

        // Without the sweep the damage goes unseen: the search silently misses every hit, and no search notices.
        await using (var unswept = await ChildServer.StartAsync(_directory, _adminKey, sweepOff))
        {
            using var client = CrashTests.Client(unswept.BaseAddress, _key);
            Assert.Empty(await ActorHitsAsync(client, victim));
            var (_, all) = await WalkAsync(client, pageSize: 1000);
            Assert.Equal(count, all.Count);
            Assert.Empty(Directory.GetFiles(_directory, "atp-read.db.damaged-*"));
            unswept.Kill();
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey, ["--Atp:Query:ReadModelSweep:RowsPerSecond=100000", "--Atp:Query:ReadModelSweep:PauseBetweenPasses=00:00:00.200"]);
        using (var client = CrashTests.Client(restarted.BaseAddress, _key))
        {
            // An unfiltered search still serves every entry (the rows it reads agree with the log): only the sweep can
            // find the damage, and it moves the file aside.
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (Directory.GetFiles(_directory, "atp-read.db.damaged-*").Length == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the read-model sweep did not find the flipped actor id within a minute");
                await Task.Delay(100);
            }

            await AssertRebuiltAsync(client, restarted, count);
            Assert.Contains(restarted.Output, line => line.Contains("read-model sweep found", StringComparison.Ordinal));
            Assert.Equal(expected, await ActorHitsAsync(client, victim));
        }
    }

    // The indexes of every event of the actor, oldest first (200 OK pages only).
    private static async Task<List<ulong>> ActorHitsAsync(HttpClient client, string actor)
    {
        var page = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?order=asc&limit=1000&actor={Uri.EscapeDataString(actor)}");
        Assert.False(page.TryGetProperty("nextCursor", out var next) && next.ValueKind == JsonValueKind.String);
        return page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64()).ToList();
    }

    [Fact]
    public async Task An_entry_no_longer_valid_JSON_is_refused_by_id_marked_in_search_pages_and_set_aside_by_a_rebuild()
    {
        const int count = 10;
        string otherKey;
        Guid brokenId;
        await using (var server = await StartWithEventsAsync(count))
        {
            using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
            otherKey = await CreateTenantAsync(admin, "bystander");
            using var other = CrashTests.Client(server.BaseAddress, otherKey);
            Assert.Equal(HttpStatusCode.Created, (await PostBatchAsync(other, 0, 1, "bystander")).StatusCode);
            await WaitCompleteAsync(other, "bystander");
            using var client = CrashTests.Client(server.BaseAddress, _key);
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?limit=100");
            brokenId = page.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("index").GetUInt64() == 3).GetProperty("event").GetProperty("id").GetGuid();
            server.Kill();
        }

        // The stored event of entry 3 is no longer JSON (its read-model row stays).
        using (var log = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_directory, "atp.db"), Pooling = false }.ToString()))
        {
            log.Open();
            using var command = log.CreateCommand();
            command.CommandText = "UPDATE log_entries SET leaf = CAST('{\"action\":\"document.read\",\"act' AS BLOB) WHERE id = ((SELECT num FROM tenants WHERE id = $t) << 40) | 3";
            command.Parameters.AddWithValue("$t", Tenant);
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        await using var restarted = await ChildServer.StartAsync(_directory, _adminKey);
        using var tenant = CrashTests.Client(restarted.BaseAddress, _key);
        using var platform = CrashTests.Client(restarted.BaseAddress, _adminKey);
        using var bystander = CrashTests.Client(restarted.BaseAddress, otherKey);

        var byId = await tenant.GetAsync($"/v1/tenants/{Tenant}/events/{brokenId}");
        var problem = await ProblemAssert.IsProblemAsync(byId, HttpStatusCode.InternalServerError, "integrity-failure");
        Assert.DoesNotContain("document.read", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var search = await tenant.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?limit=100");
        var items = search.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(count, items.Count);
        var marked = Assert.Single(items, i => i.TryGetProperty("quarantined", out _));
        Assert.Equal(3UL, marked.GetProperty("index").GetUInt64());
        Assert.True(marked.GetProperty("quarantined").GetBoolean());
        Assert.False(marked.TryGetProperty("event", out _));
        Assert.Single((await bystander.GetFromJsonAsync<JsonElement>("/v1/tenants/bystander/events")).GetProperty("items").EnumerateArray());

        // Rebuilding sets the entry aside; the rest of the log is projected and the status says so.
        var rebuilt = await platform.PostAsync($"/v1/tenants/{Tenant}/projection/rebuild", null);
        Assert.Equal(HttpStatusCode.OK, rebuilt.StatusCode);
        var status = await rebuilt.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal((ulong)count, status.GetProperty("projectedSize").GetUInt64());
        Assert.True(status.GetProperty("complete").GetBoolean());
        Assert.Equal(1, status.GetProperty("deadLetters").GetInt64());
        Assert.Equal(count - 1, (await tenant.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?limit=100")).GetProperty("items").GetArrayLength());

        var letters = await platform.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/projection/dead-letters");
        var letter = Assert.Single(letters.GetProperty("deadLetters").EnumerateArray());
        Assert.Equal(3UL, letter.GetProperty("index").GetUInt64());
        Assert.DoesNotContain("act", letter.GetProperty("error").GetString()!.Replace("actor", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await tenant.GetAsync($"/v1/tenants/{Tenant}/projection/dead-letters")).StatusCode);

        var retried = await platform.PostAsync($"/v1/tenants/{Tenant}/projection/dead-letters/retry", null);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        var retry = await retried.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(0, retry.GetProperty("projected").GetInt32());
        Assert.Equal(1, retry.GetProperty("remaining").GetInt64());

        // The platform log's own read models can be rebuilt and retried by a platform admin.
        Assert.Equal(HttpStatusCode.OK, (await platform.PostAsync("/v1/tenants/atp-platform/projection/rebuild", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await platform.PostAsync("/v1/tenants/atp-platform/projection/dead-letters/retry", null)).StatusCode);

        // Readiness shows the dead letter (counted every few seconds) and stays ready: appends still work.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var ready = await platform.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            var data = (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ready").GetProperty("data");
            if (data.GetProperty("projectionDeadLetters").GetInt64() == 1)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "readiness never reported the dead letter");
            await Task.Delay(250);
        }
    }

    private async Task<ChildServer> StartWithEventsAsync(int count, int? flagged = null)
    {
        var server = await ChildServer.StartAsync(_directory, _adminKey);
        using var admin = CrashTests.Client(server.BaseAddress, _adminKey);
        _key = await CreateTenantAsync(admin, Tenant);
        using var client = CrashTests.Client(server.BaseAddress, _key);
        for (var first = 0; first < count; first += 1000)
        {
            var response = await PostBatchAsync(client, first, Math.Min(1000, count - first), Tenant, flagged);
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"batch at {first}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}\nserver output:\n{string.Join('\n', server.Output.TakeLast(60))}");
        }

        await WaitCompleteAsync(client, Tenant);
        return server;
    }

    private static async Task<string> CreateTenantAsync(HttpClient admin, string tenant)
    {
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = tenant })).StatusCode);
        var key = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "recovery", scopes = new[] { "events:write", "events:read" } });
        return (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    // Event i occurred at Start + i seconds, so a one-second window finds exactly it.
    private static Task<HttpResponseMessage> PostBatchAsync(HttpClient client, int first, int count, string tenant = Tenant, int? flagged = null)
    {
        var body = new StringBuilder("{\"events\":[");
        for (var i = first; i < first + count; i++)
        {
            var action = i == flagged ? "flip.target" : "document.read";
            body.Append(CultureInfo.InvariantCulture, $"{{\"type\":\"acme.audit.v1\",\"occurredAt\":\"{Start.AddSeconds(i):yyyy-MM-dd'T'HH:mm:ss'Z'}\",\"actor\":{{\"type\":\"user\",\"id\":\"user-{i % 50}\"}},\"action\":\"{action}\",\"outcome\":\"success\"}}");
            body.Append(i + 1 < first + count ? "," : "]}");
        }

        return client.PostAsync($"/v1/tenants/{tenant}/events", new StringContent(body.ToString(), Encoding.UTF8, "application/json"));
    }

    private static async Task WaitCompleteAsync(HttpClient client, string tenant)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!(await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/projection")).GetProperty("complete").GetBoolean())
        {
            Assert.True(DateTime.UtcNow < deadline, "projection did not complete within 2 minutes");
            await Task.Delay(100);
        }
    }

    // Every page of an unfiltered ascending search; the snapshot its first page pinned and the indexes it returned.
    private static async Task<(ulong Snapshot, List<ulong> Indexes)> WalkAsync(HttpClient client, int pageSize)
    {
        var indexes = new List<ulong>();
        ulong? snapshot = null;
        string? cursor = null;
        do
        {
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/events?order=asc&limit={pageSize}" + (cursor is null ? string.Empty : "&cursor=" + Uri.EscapeDataString(cursor)));
            snapshot ??= page.GetProperty("snapshot").GetUInt64();
            Assert.Equal(snapshot, page.GetProperty("snapshot").GetUInt64());
            indexes.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64()));
            cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
        }
        while (cursor is not null);
        return (snapshot.Value, indexes);
    }

    // Searches until a full walk returns every entry: meanwhile every answer is a page or 503 projection-rebuilding
    // with Retry-After, never a 500. Then the damaged file lies aside, named in the log, and readiness never failed.
    private async Task AssertRebuiltAsync(HttpClient client, ChildServer server, int count)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        var rebuildingAnswers = 0;
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "search did not return every entry within 2 minutes");
            var indexes = new List<ulong>();
            string? cursor = null;
            var refused = false;
            do
            {
                var response = await client.GetAsync($"/v1/tenants/{Tenant}/events?order=asc&limit=500" + (cursor is null ? string.Empty : "&cursor=" + Uri.EscapeDataString(cursor)));
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "projection-rebuilding");
                    Assert.NotNull(response.Headers.RetryAfter);
                    rebuildingAnswers++;
                    refused = true;
                    break;
                }

                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var page = await response.Content.ReadFromJsonAsync<JsonElement>();
                indexes.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64()));
                cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
            }
            while (cursor is not null);

            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
            if (!refused && indexes.Count == count)
            {
                Assert.Equal(Enumerable.Range(0, count).Select(i => (ulong)i), indexes);
                break;
            }

            await Task.Delay(200);
        }

        output.WriteLine($"{rebuildingAnswers} answers 503 projection-rebuilding before the rebuilt read models served every entry");
        Assert.NotEmpty(Directory.GetFiles(_directory, "atp-read.db.damaged-*"));
        Assert.Contains(server.Output, line => line.Contains(ReadModelPath, StringComparison.Ordinal));
        var ready = await (await client.GetAsync("/readyz")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(ready.GetProperty("ready").GetProperty("data").GetProperty("projectionRebuilding").GetBoolean());
    }

    // Copies the WAL a killed server left into the file itself, so byte edits hit the pages SQLite will read.
    private void CheckpointReadModels()
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ReadModelPath, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;";
        command.ExecuteNonQuery();
    }

    // The root page of the named b-tree (the bundled SQLite has no dbstat table to pick another page of it): every
    // search that walks the b-tree reads it.
    private long RootPageOf(string btree)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ReadModelPath, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT rootpage FROM sqlite_schema WHERE name = $name";
        command.Parameters.AddWithValue("$name", btree);
        var page = (long)command.ExecuteScalar()!;
        Assert.True(page > 1);
        return page;
    }
}
