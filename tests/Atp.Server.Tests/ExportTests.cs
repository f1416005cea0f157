using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Export jobs over real Kestrel and the configured engine: create, list, get, cancel and download (with Range); each
/// line format checked field by field against the stored leaves; filters and time windows; every quota refusal; the
/// platform audit records.
/// </summary>
public sealed class ExportTests : IAsyncLifetime
{
    internal static readonly string[] ExportScopes = [Scopes.EventsWrite, Scopes.EventsRead, Scopes.ExportsCreate];

    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Export:SweepInterval"] = "00:00:00.100" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>A tenant with <paramref name="count"/> events (actors user-0…), sealed and searchable; a key with the export scopes.</summary>
    internal static async Task<HttpClient> TenantWithEventsAsync(ServerFixture server, string tenant, int count, Func<int, string>? make = null)
    {
        var client = server.ClientWithKey(await server.CreateTenantWithKeyAsync(tenant, ExportScopes));
        for (var done = 0; done < count; done += 1000)
        {
            var n = Math.Min(1000, count - done);
            var response = await client.PostAsync($"/v1/tenants/{tenant}/events", ServerFixture.Json(ServerFixture.Batch(n, i => make?.Invoke(done + i) ?? ServerFixture.Event(actor: $"user-{done + i}"))));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        await ServerFixture.WaitForCheckpointAsync(client, tenant, (ulong)count);
        await ServerFixture.WaitForProjectionAsync(client, tenant);
        return client;
    }

    /// <summary>The server's export directory: the one the storage arguments name (PostgreSQL), else the data directory's.</summary>
    internal static string ExportDirectory(ServerFixture server) =>
        server.StorageArguments.FirstOrDefault(a => a.StartsWith("--Atp:Export:Directory=", StringComparison.Ordinal))?.Split('=', 2)[1]
        ?? Path.Combine(server.DataDirectory, "exports");

    internal static async Task<JsonElement> CreateAsync(HttpClient client, string tenant, object request)
    {
        var response = await client.PostAsJsonAsync($"/v1/tenants/{tenant}/exports", request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {text}");
        var job = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal($"/v1/tenants/{tenant}/exports/{job.GetProperty("id").GetString()}", response.Headers.Location?.OriginalString);
        Assert.Contains(job.GetProperty("state").GetString(), new[] { "queued", "running", "succeeded" });
        return job;
    }

    internal static async Task<JsonElement> WaitForStateAsync(HttpClient client, string tenant, string id, string state, Action? tick = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var job = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{tenant}/exports/{id}");
            if (job.GetProperty("state").GetString() == state)
            {
                return job;
            }

            // Any state may still expire; otherwise only a queued or running job may still reach the state waited for.
            Assert.True(state == "expired" || job.GetProperty("state").GetString() is "queued" or "running", $"the job ended {job}, not {state}");
            Assert.True(DateTime.UtcNow < deadline, $"export {id} did not reach {state} within 60 s: {job}");
            tick?.Invoke();
            await Task.Delay(50);
        }
    }

    internal static async Task<byte[]> DownloadAsync(HttpClient client, string tenant, string id)
    {
        var response = await client.GetAsync($"/v1/tenants/{tenant}/exports/{id}/download");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    private static async Task<List<byte[]>> LeavesAsync(HttpClient client, string tenant, int count)
    {
        var leaves = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            leaves.Add(await client.GetByteArrayAsync($"/v1/tenants/{tenant}/log/entries/{i}"));
        }

        return leaves;
    }

    [Fact]
    public async Task A_csv_export_runs_and_downloads_whole_and_by_range_with_its_hash_as_etag()
    {
        using var acme = await TenantWithEventsAsync(_server, "acme", 20);
        var created = await CreateAsync(acme, "acme", new { format = "csv", fromIndex = 5, toIndex = 15 });
        var id = created.GetProperty("id").GetString()!;

        var job = await WaitForStateAsync(acme, "acme", id, "succeeded");
        var file = await DownloadAsync(acme, "acme", id);

        Assert.Equal(10UL, job.GetProperty("events").GetUInt64());
        Assert.Equal(100, job.GetProperty("percent").GetInt32());
        Assert.Equal(file.Length, job.GetProperty("bytes").GetInt64());
        var sha = Convert.ToHexStringLower(SHA256.HashData(file));
        Assert.Equal(sha, job.GetProperty("sha256").GetString());
        Assert.True(job.GetProperty("expiresAt").GetDateTimeOffset() > job.GetProperty("createdAt").GetDateTimeOffset().AddDays(6));
        var lines = Encoding.UTF8.GetString(file).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("index,id,occurredAt,receivedAt,type,action,outcome,actorType,actorId,actorName,targets,ip,userAgent,requestId,data,leafHash", lines[0]);
        Assert.Equal(11, lines.Length);
        var leaves = await LeavesAsync(acme, "acme", 15);
        for (var i = 0; i < 10; i++)
        {
            var index = 5 + i;
            using var leaf = JsonDocument.Parse(leaves[index]);
            var e = leaf.RootElement;
            var cells = ParseCsvLine(lines[1 + i]);
            Assert.Equal(16, cells.Count);
            Assert.Equal(index.ToString(), cells[0]);
            Assert.Equal(e.GetProperty("id").GetString(), cells[1]);
            Assert.Equal(e.GetProperty("occurredAt").GetString(), cells[2]);
            Assert.Equal(e.GetProperty("receivedAt").GetString(), cells[3]);
            Assert.Equal("app.audit", cells[4]);
            Assert.Equal("document.update", cells[5]);
            Assert.Equal("success", cells[6]);
            Assert.Equal("user", cells[7]);
            Assert.Equal($"user-{index}", cells[8]);
            Assert.Equal("", cells[9]);
            Assert.Equal(e.GetProperty("targets").GetRawText(), cells[10]);
            // The IP is classified pii: the export carries the token the leaf committed to, never the clear value.
            Assert.Equal(e.GetProperty("context").GetProperty("ip").GetString(), cells[11]);
            Assert.StartsWith(Atp.Core.Classification.FieldToken.Prefix, cells[11], StringComparison.Ordinal);
            Assert.Equal("{\"n\":1}", cells[14]);
            Assert.Equal(MerkleHasher.HashLeaf(leaves[index]).ToBase64(), cells[15]);
        }

        using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v1/tenants/acme/exports/{id}/download");
        ranged.Headers.Range = new RangeHeaderValue(10, 99);
        var partial = await acme.SendAsync(ranged);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
        Assert.Equal($"bytes 10-99/{file.Length}", partial.Content.Headers.ContentRange?.ToString());
        Assert.Equal(file.AsSpan(10, 90).ToArray(), await partial.Content.ReadAsByteArrayAsync());
        Assert.Equal($"\"{sha}\"", partial.Headers.ETag?.ToString());

        using var unchanged = new HttpRequestMessage(HttpMethod.Get, $"/v1/tenants/acme/exports/{id}/download");
        unchanged.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{sha}\""));
        Assert.Equal(HttpStatusCode.NotModified, (await acme.SendAsync(unchanged)).StatusCode);

        // Reading jobs needs events:read; creating and cancelling needs exports:create.
        using var reader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead));
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"/v1/tenants/acme/exports/{id}/download")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync("/v1/tenants/acme/exports", new { format = "csv" })).StatusCode);
        using var exporter = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.ExportsCreate));
        Assert.Equal(HttpStatusCode.Forbidden, (await exporter.GetAsync($"/v1/tenants/acme/exports/{id}")).StatusCode);

        // Another tenant sees nothing of it.
        using var globex = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("globex", ExportScopes));
        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/globex/exports/{id}"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/globex/exports/{id}/download"), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.Forbidden, (await globex.GetAsync($"/v1/tenants/acme/exports/{id}")).StatusCode);
    }

    [Fact]
    public async Task Jobs_are_listed_newest_first_by_pages_and_a_running_job_is_cancelled()
    {
        await _server.DisposeAsync();
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Export:EntriesPerPart"] = "1", ["Atp:Export:SweepInterval"] = "00:00:00.100" });
        using var acme = await TenantWithEventsAsync(_server, "acme", 3000);
        var first = (await CreateAsync(acme, "acme", new { format = "csv", toIndex = 2 })).GetProperty("id").GetString()!;
        await WaitForStateAsync(acme, "acme", first, "succeeded");

        // The job stalls after its first part (an injected fault) until it is cancelled: still running when the cancel
        // arrives, however fast the disk (on tmpfs 3,000 parts take milliseconds).
        var worker = _server.Services.GetRequiredService<Atp.Server.Export.ExportWorker>();
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.AfterPart = async ct =>
        {
            stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };
        var slow = (await CreateAsync(acme, "acme", new { format = "cloudevents" })).GetProperty("id").GetString()!;
        await stalled.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("running", (await acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/exports/{slow}")).GetProperty("state").GetString());
        var cancelled = await acme.PostAsync($"/v1/tenants/acme/exports/{slow}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Equal("cancelled", (await cancelled.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString());
        await ProblemAssert.IsProblemAsync(await acme.DeleteAsync($"/v1/tenants/acme/exports/{slow}"), HttpStatusCode.Conflict, "export-finished");
        await ProblemAssert.IsProblemAsync(await acme.GetAsync($"/v1/tenants/acme/exports/{slow}/download"), HttpStatusCode.Conflict, "export-not-ready");
        await ProblemAssert.IsProblemAsync(await acme.DeleteAsync($"/v1/tenants/acme/exports/{first}"), HttpStatusCode.Conflict, "export-finished");
        var third = (await CreateAsync(acme, "acme", new { format = "ocsf", toIndex = 1 })).GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await acme.DeleteAsync($"/v1/tenants/acme/exports/{third}")).StatusCode);

        // The cancelled job's files go (its state stays, cancelled); the worker does not pick it up again.
        var directory = Path.Combine(ExportDirectory(_server), "jobs", "acme", slow);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Directory.EnumerateFileSystemEntries(directory).Any(f => Path.GetFileName(f) is not ("state.json" or "lock")))
        {
            Assert.True(DateTime.UtcNow < deadline, "the cancelled job's files were not deleted");
            await Task.Delay(50);
        }

        await Task.Delay(300);
        Assert.Equal("cancelled", (await acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/exports/{slow}")).GetProperty("state").GetString());

        var all = await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/exports");
        Assert.Equal([third, slow, first], all.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToArray());
        var page1 = await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/exports?limit=2");
        Assert.Equal([third, slow], page1.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToArray());
        var cursor = page1.GetProperty("nextCursor").GetString();
        var page2 = await acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/exports?limit=2&cursor={cursor}");
        Assert.Equal([first], page2.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToArray());
        Assert.False(page2.TryGetProperty("nextCursor", out _));
        await ProblemAssert.IsProblemAsync(await acme.GetAsync("/v1/tenants/acme/exports?cursor=exp_00000000000000000000ff"), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Ocsf_lines_are_api_activity_6003_field_by_field()
    {
        using var acme = await TenantWithEventsAsync(_server, "acme", 4, i => ServerFixture.Event(action: i == 3 ? "document.delete" : "document.update", actor: $"user-{i}"));
        var id = (await CreateAsync(acme, "acme", new { format = "ocsf" })).GetProperty("id").GetString()!;
        await WaitForStateAsync(acme, "acme", id, "succeeded");
        var lines = Encoding.UTF8.GetString(await DownloadAsync(acme, "acme", id)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var leaves = await LeavesAsync(acme, "acme", 4);

        Assert.Equal(4, lines.Length);
        for (var i = 0; i < 4; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            using var leafDocument = JsonDocument.Parse(leaves[i]);
            var o = line.RootElement;
            var leaf = leafDocument.RootElement;
            var activity = i == 3 ? 4 : 3;
            Assert.Equal(6003, o.GetProperty("class_uid").GetInt32());
            Assert.Equal("API Activity", o.GetProperty("class_name").GetString());
            Assert.Equal(6, o.GetProperty("category_uid").GetInt32());
            Assert.Equal(activity, o.GetProperty("activity_id").GetInt32());
            Assert.Equal(600300 + activity, o.GetProperty("type_uid").GetInt64());
            Assert.Equal(1, o.GetProperty("severity_id").GetInt32());
            Assert.Equal(1, o.GetProperty("status_id").GetInt32());
            Assert.Equal(DateTimeOffset.Parse(leaf.GetProperty("occurredAt").GetString()!).ToUnixTimeMilliseconds(), o.GetProperty("time").GetInt64());
            var metadata = o.GetProperty("metadata");
            Assert.StartsWith("1.", metadata.GetProperty("version").GetString());
            Assert.Equal(leaf.GetProperty("id").GetString(), metadata.GetProperty("uid").GetString());
            Assert.Equal("atp.test/test-cell-1/acme", metadata.GetProperty("log_name").GetString());
            Assert.Equal(i, metadata.GetProperty("sequence").GetInt32());
            Assert.Equal("ATP", metadata.GetProperty("product").GetProperty("name").GetString());
            Assert.Equal($"user-{i}", o.GetProperty("actor").GetProperty("user").GetProperty("uid").GetString());
            Assert.Equal("user", o.GetProperty("actor").GetProperty("user").GetProperty("type").GetString());
            Assert.Equal(leaf.GetProperty("action").GetString(), o.GetProperty("api").GetProperty("operation").GetString());
            Assert.Equal(leaf.GetProperty("context").GetProperty("ip").GetString(), o.GetProperty("src_endpoint").GetProperty("ip").GetString());
            Assert.StartsWith(Atp.Core.Classification.FieldToken.Prefix, o.GetProperty("src_endpoint").GetProperty("ip").GetString(), StringComparison.Ordinal);
            Assert.Equal("local", o.GetProperty("cloud").GetProperty("region").GetString());
            var resource = Assert.Single(o.GetProperty("resources").EnumerateArray());
            Assert.Equal("doc-1", resource.GetProperty("uid").GetString());
            Assert.Equal("document", resource.GetProperty("type").GetString());
            Assert.Equal("Q3.pdf", resource.GetProperty("name").GetString());
            Assert.Equal(1, o.GetProperty("unmapped").GetProperty("data").GetProperty("n").GetInt32());
            Assert.Equal(MerkleHasher.HashLeaf(leaves[i]).ToBase64(), o.GetProperty("unmapped").GetProperty("atp_leaf_hash").GetString());
        }
    }

    [Fact]
    public async Task CloudEvents_lines_carry_the_required_attributes_and_the_event_as_data()
    {
        using var acme = await TenantWithEventsAsync(_server, "acme", 3);
        var id = (await CreateAsync(acme, "acme", new { format = "cloudevents", fromIndex = 1 })).GetProperty("id").GetString()!;
        await WaitForStateAsync(acme, "acme", id, "succeeded");
        var lines = Encoding.UTF8.GetString(await DownloadAsync(acme, "acme", id)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var leaves = await LeavesAsync(acme, "acme", 3);

        Assert.Equal(2, lines.Length);
        for (var i = 0; i < 2; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            using var leafDocument = JsonDocument.Parse(leaves[1 + i]);
            var ce = line.RootElement;
            var leaf = leafDocument.RootElement;
            Assert.Equal("1.0", ce.GetProperty("specversion").GetString());
            Assert.Equal(leaf.GetProperty("id").GetString(), ce.GetProperty("id").GetString());
            Assert.Equal("urn:atp:atp.test/test-cell-1/acme", ce.GetProperty("source").GetString());
            Assert.True(Uri.IsWellFormedUriString(ce.GetProperty("source").GetString(), UriKind.Absolute));
            Assert.Equal("app.audit", ce.GetProperty("type").GetString());
            Assert.Equal("document/doc-1", ce.GetProperty("subject").GetString());
            Assert.Equal(leaf.GetProperty("occurredAt").GetString(), ce.GetProperty("time").GetString());
            Assert.Equal("application/json", ce.GetProperty("datacontenttype").GetString());
            Assert.Equal((1 + i).ToString(), ce.GetProperty("atpindex").GetString());
            Assert.Equal(MerkleHasher.HashLeaf(leaves[1 + i]).ToBase64(), ce.GetProperty("atpleafhash").GetString());
            Assert.Equal(leaves[1 + i], JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(ce.GetProperty("data").GetRawText())));
            Assert.All(ce.EnumerateObject(), p => Assert.Matches("^[a-z0-9]{1,20}$", p.Name));
        }
    }

    [Fact]
    public async Task Filters_and_a_received_time_window_select_the_events_and_bad_requests_are_400()
    {
        using var acme = await TenantWithEventsAsync(_server, "acme", 30, i => ServerFixture.Event(action: i % 3 == 0 ? "document.delete" : "document.update", actor: $"user-{i % 5}"));
        var filtered = (await CreateAsync(acme, "acme", new { format = "csv", filters = new { action = "document.delete", actor = "user-0" } })).GetProperty("id").GetString()!;
        var job = await WaitForStateAsync(acme, "acme", filtered, "succeeded");
        var rows = Encoding.UTF8.GetString(await DownloadAsync(acme, "acme", filtered)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(ParseCsvLine).ToList();
        Assert.Equal(new[] { "0", "15" }, rows.Select(r => r[0]).ToArray());
        Assert.All(rows, r => Assert.Equal("document.delete", r[5]));
        Assert.False(job.GetProperty("complete").GetBoolean());
        Assert.Equal("user-0", job.GetProperty("filters").GetProperty("actor").GetString());

        // A window of received time: only the second batch.
        await Task.Delay(50);
        var between = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(4, i => ServerFixture.Event(actor: $"late-{i}"))))).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(acme, "acme", 34);
        var windowed = await CreateAsync(acme, "acme", new { format = "csv", from = between });
        Assert.Equal(30UL, windowed.GetProperty("fromIndex").GetUInt64());
        Assert.Equal(34UL, windowed.GetProperty("toIndex").GetUInt64());
        await WaitForStateAsync(acme, "acme", windowed.GetProperty("id").GetString()!, "succeeded");
        var late = Encoding.UTF8.GetString(await DownloadAsync(acme, "acme", windowed.GetProperty("id").GetString()!)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(ParseCsvLine).ToList();
        Assert.Equal(new[] { "late-0", "late-1", "late-2", "late-3" }, late.Select(r => r[8]).ToArray());

        foreach (var (body, names) in new (object Body, string[] Names)[]
        {
            (new { format = "xml" }, ["format"]),
            (new { format = "csv", fromIndex = 3, toIndex = 2 }, ["toIndex"]),
            (new { format = "csv", fromIndex = 1, from = between }, ["fromIndex/toIndex and from/to"]),
            (new { format = "csv", filters = new { actress = "x" } }, ["filters.actress"]),
            (new { format = "csv", filters = new { limit = "5" } }, ["filters.limit"]),
            (new { format = "csv", filters = new { outcome = "maybe" } }, ["filters.outcome"]),
            (new { format = "csv", filters = new { } }, ["filters"]),
        })
        {
            var problem = await ProblemAssert.IsProblemAsync(await acme.PostAsJsonAsync("/v1/tenants/acme/exports", body), HttpStatusCode.BadRequest, "validation");
            var errors = string.Join("\n", problem.GetProperty("errors").EnumerateArray().Select(e => e.GetString()));
            Assert.All(names, n => Assert.Contains(n, errors, StringComparison.Ordinal));
        }

        var beyond = await ProblemAssert.IsProblemAsync(await acme.PostAsJsonAsync("/v1/tenants/acme/exports", new { format = "csv", toIndex = 35 }), HttpStatusCode.BadRequest, "validation");
        Assert.Contains("34", beyond.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_log_without_a_signed_checkpoint_cannot_be_exported_yet()
    {
        // The sealer's first pass after the tenant exists is an hour away: the log has no checkpoint, not even of size 0.
        await _server.DisposeAsync();
        _server = await ServerFixture.StartAsync(checkpointInterval: "01:00:00");
        using var fresh = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("fresh", ExportScopes));

        var problem = await ProblemAssert.IsProblemAsync(await fresh.PostAsJsonAsync("/v1/tenants/fresh/exports", new { format = "ndjson" }), HttpStatusCode.Conflict, "export-nothing-signed");

        Assert.Contains("checkpoint", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, (await fresh.GetFromJsonAsync<JsonElement>("/v1/tenants/fresh/exports")).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Quotas_refuse_with_the_quota_named_and_a_job_that_grows_past_its_limit_fails()
    {
        await _server.DisposeAsync();
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Export:EntriesPerPart"] = "1", ["Atp:Export:SweepInterval"] = "00:00:00.100" });
        using var admin = _server.Admin;
        using var acme = await TenantWithEventsAsync(_server, "acme", 3000, i => i is 1 or 2
            ? ServerFixture.Event(actor: $"user-{i}").Replace("\"data\":{\"n\":1}", "\"data\":{\"blob\":\"" + new string('x', 60_000) + "\"}", StringComparison.Ordinal)
            : ServerFixture.Event(actor: $"user-{i}"));

        // The quotas are edition defaults, overridable per tenant, shown with the tenant's settings.
        var tenant = await admin.GetFromJsonAsync<JsonElement>("/v1/tenants/acme");
        Assert.Equal(2, tenant.GetProperty("settings").GetProperty("maxConcurrentExports").GetInt32());
        Assert.Equal(10L * 1024 * 1024 * 1024, tenant.GetProperty("settings").GetProperty("maxDailyExportBytes").GetInt64());
        Assert.Equal(2L * 1024 * 1024 * 1024, tenant.GetProperty("settings").GetProperty("exportJobMaxBytes").GetInt64());
        await ProblemAssert.IsProblemAsync(await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxConcurrentExports = 0 } }), HttpStatusCode.BadRequest, "validation");

        // Too big for one job: 413, naming the quota; nothing is created.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { exportJobMaxBytes = 2048 } })).StatusCode);
        var tooBig = await ProblemAssert.IsProblemAsync(await acme.PostAsJsonAsync("/v1/tenants/acme/exports", new { format = "ndjson" }), HttpStatusCode.RequestEntityTooLarge, "export-too-large");
        Assert.Contains("exportJobMaxBytes", tooBig.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, (await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/exports")).GetProperty("items").GetArrayLength());

        // Estimated below the limit (the samples miss the two big events), then larger while running: failed, with the reason.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { exportJobMaxBytes = 80_000 } })).StatusCode);
        var growing = (await CreateAsync(acme, "acme", new { format = "csv", toIndex = 100 })).GetProperty("id").GetString()!;
        var failed = await WaitForStateAsync(acme, "acme", growing, "failed");
        Assert.Contains("exportJobMaxBytes", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(await acme.GetAsync($"/v1/tenants/acme/exports/{growing}/download"), HttpStatusCode.Conflict, "export-not-ready");

        // One job at a time: the second is refused while the first runs (held after its first part by an injected
        // stall, however fast the disk), accepted once it is cancelled.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxConcurrentExports = 1, exportJobMaxBytes = (long?)null } })).StatusCode);
        var worker = _server.Services.GetRequiredService<Atp.Server.Export.ExportWorker>();
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.AfterPart = async ct =>
        {
            stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };
        var running = (await CreateAsync(acme, "acme", new { format = "cloudevents" })).GetProperty("id").GetString()!;
        await stalled.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var busy = await ProblemAssert.IsProblemAsync(await acme.PostAsJsonAsync("/v1/tenants/acme/exports", new { format = "csv" }), HttpStatusCode.TooManyRequests, "export-quota");
        Assert.Contains("maxConcurrentExports", busy.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await acme.DeleteAsync($"/v1/tenants/acme/exports/{running}")).StatusCode);
        worker.AfterPart = null;
        var next = (await CreateAsync(acme, "acme", new { format = "csv", toIndex = 1 })).GetProperty("id").GetString()!;
        await WaitForStateAsync(acme, "acme", next, "succeeded");

        // Bytes per UTC day: refused with the quota, when it resets, and Retry-After until then.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { maxDailyExportBytes = 1024 } })).StatusCode);
        var daily = await acme.PostAsJsonAsync("/v1/tenants/acme/exports", new { format = "csv", toIndex = 1 });
        var spent = await ProblemAssert.IsProblemAsync(daily, HttpStatusCode.TooManyRequests, "export-quota");
        Assert.Contains("maxDailyExportBytes", spent.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("00:00 UTC", spent.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var retryAfter = daily.Headers.RetryAfter?.Delta ?? TimeSpan.Zero;
        var untilMidnight = DateTime.UtcNow.Date.AddDays(1) - DateTime.UtcNow;
        Assert.InRange(retryAfter, untilMidnight - TimeSpan.FromMinutes(1), untilMidnight + TimeSpan.FromMinutes(1));
    }

    internal static List<string> ParseCsvLine(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    cell.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else
            {
                cell.Append(c);
            }
        }

        cells.Add(cell.ToString());
        return cells;
    }
}
