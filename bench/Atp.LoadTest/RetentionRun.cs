using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Integrity;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Atp.LoadTest;

/// <summary>
/// A retention pass over a large log (issue 19, "a retention pass over 10 M entries is measured"): hosts the server in
/// this process (background retention and the projector off, so only the pass works), builds a tenant log of
/// <c>--retention</c> entries received 400 days ago straight through the store's append path in batches (going through
/// HTTP would take hours and is not what is measured), sets a 30-day retention through the two-person policy approval,
/// then times <c>POST …/retention/run</c> (the endpoint a tenant admin calls; the background service runs the same
/// pass): the pass that purges everything, a second pass at once (nothing expired, starting where the first ended), and
/// a pass after a restart (the start point is kept in memory, so it walks the purged log from entry 0).
/// </summary>
internal static class RetentionRun
{
    private const string TenantId = "retention";
    private const int BuildBatch = 10_000;

    public static async Task<int> RunAsync(LoadTestSettings settings, int entries, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP retention pass: {string.Join(' ', args)}");
        Console.WriteLine($"  {entries:N0} expired entries, engine {settings.Engine}; machine {Environment.ProcessorCount} cores, {Environment.Version}, load average {LoadAverage()}");
        var data = Directory.CreateTempSubdirectory("atp-loadtest-retention-");
        var adminKey = ApiKeyFormat.Generate();
        string[] arguments = InProcessServer.Arguments(
            data.FullName,
            adminKey,
            [
                "--Atp:Retention:Enabled=false",
                "--Atp:Query:Projector=false",
                .. settings.Engine == "postgres"
                    ? new[] { "--Atp:Storage:Provider=postgres", $"--ConnectionStrings:Atp={settings.PgConnection}", $"--ConnectionStrings:AtpAdmin={settings.PgAdminConnection}", $"--Atp:Export:Directory={data.FullName}/exports" }
                    : Array.Empty<string>(),
            ]);
        var app = await InProcessServer.StartAsync(arguments, cancellationToken);
        try
        {
            var services = app.Services;
            var now = DateTimeOffset.UtcNow;
            var key = await InProcessServer.CreateTenantAsync(services.GetRequiredService<ITenantStore>(), TenantId, "retention", [Scopes.TenantAdmin], cancellationToken);

            var building = Stopwatch.StartNew();
            await BuildAsync(services.GetRequiredService<ILogStore>(), entries, now.AddDays(-400), cancellationToken);
            var built = building.Elapsed;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  built {entries:N0} entries in {built.TotalSeconds:0.0} s ({entries / built.TotalSeconds:N0} entries/s)"));

            await SetRetentionAsync(InProcessServer.Url(app), adminKey, cancellationToken);
            var sizeBefore = await StoreSizeAsync(settings, data, cancellationToken);
            var purging = await PassAsync(InProcessServer.Url(app), key, cancellationToken);
            var sizeAfter = await StoreSizeAsync(settings, data, cancellationToken);
            var again = await PassAsync(InProcessServer.Url(app), key, cancellationToken);

            await InProcessServer.StopAsync(app);
            app = await InProcessServer.StartAsync(arguments, cancellationToken);
            var restarted = await PassAsync(InProcessServer.Url(app), key, cancellationToken);

            Console.WriteLine();
            Console.WriteLine("| pass | wall s | purged | entries purged/s | purge records | files scrubbed |");
            Console.WriteLine("|---|---:|---:|---:|---:|---|");
            foreach (var (name, pass) in new[] { ("first (everything expired)", purging), ("second, at once (nothing expired)", again), ("after a restart (nothing expired)", restarted) })
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {pass.Wall.TotalSeconds:0.00} | {pass.Purged:N0} | {(pass.Purged == 0 ? "–" : (pass.Purged / pass.Wall.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture))} | {pass.Records:N0} | {pass.FilesScrubbed} |"));
            }

            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  build {built.TotalSeconds:0.0} s; store {sizeBefore / 1e6:N0} MB before the pass, {sizeAfter / 1e6:N0} MB after; load average now {LoadAverage()}"));
            return purging.Purged == entries ? LoadTestCommand.ExitOk : LoadTestCommand.ExitRequestErrors;
        }
        finally
        {
            await InProcessServer.StopAsync(app);
            data.Delete(recursive: true);
        }
    }

    // Leaves as ingestion writes them (LeafWriter), received 400 days ago a millisecond apart; the next batch is made
    // while the store appends the current one.
    private static async Task BuildAsync(ILogStore store, int entries, DateTimeOffset receivedFrom, CancellationToken cancellationToken)
    {
        var next = Task.Run(() => Batch(0, Math.Min(BuildBatch, entries), receivedFrom), cancellationToken);
        for (var from = 0; from < entries; from += BuildBatch)
        {
            var batch = await next;
            var following = from + BuildBatch;
            next = Task.Run(() => Batch(following, Math.Min(BuildBatch, entries - following), receivedFrom), cancellationToken);
            if (await store.AppendAsync(new AppendRequest(TenantId, batch, null), cancellationToken) is not Appended { Replayed: false })
            {
                throw new InvalidOperationException($"The batch from entry {from} was not appended.");
            }

            if (from / BuildBatch % 100 == 99)
            {
                Console.WriteLine($"  … {following:N0} entries");
            }
        }
    }

    private static PendingEntry[] Batch(int from, int count, DateTimeOffset receivedFrom)
    {
        var batch = new PendingEntry[Math.Max(count, 0)];
        for (var i = 0; i < batch.Length; i++)
        {
            var n = from + i;
            var receivedAt = receivedFrom.AddMilliseconds(n);
            var data = JsonDocument.Parse($$"""{"field":"name","from":"value {{n}}","to":"value {{n + 1}}"}""").RootElement;
            var auditEvent = new AuditEvent(
                Guid.CreateVersion7(receivedAt), "profile.update", receivedAt, receivedAt, new Party("user", $"user-{n % 5000}", null), "profile.update",
                [new Party("document", $"doc-{n % 97}", null)], EventOutcome.Success, new EventContext("203.0.113.7", "bench/1.0", null), data);
            var leaf = LeafWriter.ToLeaf(auditEvent);
            batch[i] = new PendingEntry(auditEvent.Id, false, leaf, MerkleHasher.HashLeaf(leaf), null, receivedAt);
        }

        return batch;
    }

    // The policy the way an operator sets it: proposed by the bootstrap admin, approved by a second platform admin.
    private static async Task SetRetentionAsync(Uri url, string adminKey, CancellationToken cancellationToken)
    {
        using var http = Client(url, adminKey);
        var second = await PostAsync(http, "v1/admin/keys", """{"name":"second approver","owner":"second@example.com"}""", cancellationToken);
        var proposal = await PostAsync(http, $"v1/tenants/{TenantId}/policy/proposals", """{"changes":{"retention":{"days":30}},"reason":"benchmark"}""", cancellationToken);
        using var approver = Client(url, second.GetProperty("key").GetString()!);
        await PostAsync(approver, $"v1/tenants/{TenantId}/policy/proposals/{proposal.GetProperty("id").GetString()}/approve", null, cancellationToken);
    }

    private static async Task<PassResult> PassAsync(Uri url, string key, CancellationToken cancellationToken)
    {
        using var http = Client(url, key);
        var cpu = MachineCpu.BusyTime();
        var wall = Stopwatch.StartNew();
        var response = await PostAsync(http, $"v1/tenants/{TenantId}/retention/run", null, cancellationToken);
        var result = new PassResult(
            wall.Elapsed, response.GetProperty("purged").GetInt32(), response.GetProperty("purgeRecords").GetArrayLength(), response.GetProperty("filesScrubbed").GetBoolean());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  pass: {result.Wall.TotalSeconds:0.00} s, {result.Purged:N0} purged in {result.Records:N0} records; machine CPU busy {(MachineCpu.BusyTime() - cpu)?.TotalSeconds:0.0} s"));
        return result;
    }

    private static HttpClient Client(Uri url, string key)
    {
        var http = new HttpClient { BaseAddress = url, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    private static async Task<JsonElement> PostAsync(HttpClient http, string path, string? json, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(path, UriKind.Relative));
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return (int)response.StatusCode is 200 or 201
            ? JsonDocument.Parse(body).RootElement.Clone()
            : throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {body}");
    }

    // The embedded engine's files (database, WAL), or the PostgreSQL database's size.
    private static async Task<long> StoreSizeAsync(LoadTestSettings settings, DirectoryInfo data, CancellationToken cancellationToken)
    {
        if (settings.Engine != "postgres")
        {
            var files = data.EnumerateFiles("atp.db*").ToList();
            Console.WriteLine($"  store files: {string.Join(", ", files.Select(f => $"{f.Name} {f.Length / 1e6:N0} MB"))}");
            return files.Sum(f => f.Length);
        }

        await using var connection = new NpgsqlConnection(settings.PgAdminConnection);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT pg_database_size(current_database())", connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private sealed record PassResult(TimeSpan Wall, int Purged, int Records, bool FilesScrubbed);
}
