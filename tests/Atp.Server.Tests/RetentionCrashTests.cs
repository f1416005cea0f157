using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Storage.Contract;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// A purge is one transaction (the entries' content removed, their purge record appended): a server process is SIGKILLed
/// while retention passes purge expired entries under concurrent ingest, restarted, and every entry must hold either its
/// original leaf or be purged by a purge record in the log whose range covers it and whose count is what it purged —
/// never a removed or changed leaf without its record; held entries keep their content; every receipt and proof holds.
/// </summary>
public sealed class RetentionCrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Tenant = "crash-a";
    private const string HeldActor = "held-actor";
    private const int OldEvents = 600;
    private const int SweptBatches = 120;
    private const int SweptBatchSize = 5;

    // The swept entries expire one batch after another while the child runs, so its passes keep purging (not only the first).
    private static readonly TimeSpan SweepLead = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SweepLength = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_SIGKILL_during_purges_leaves_each_entry_with_its_leaf_or_purged_by_a_record_that_counts_it(int seed)
    {
        var random = new Random(seed);

        // The child runs on the real clock, so the expired entries are received first by an in-process server on a manual
        // clock set 400 days back (same data directory, same PostgreSQL database); the manual clock then follows real time.
        var clock = new ManualClock(DateTimeOffset.UtcNow.AddDays(-400));
        using var stopPump = new CancellationTokenSource();
        var pump = PumpAsync(clock, stopPump.Token);
        var fixture = await ServerFixture.StartAsync(clock: clock, settings: new Dictionary<string, string?> { ["Atp:Retention:Enabled"] = "false" });
        try
        {
            var keys = new Dictionary<string, string>(StringComparer.Ordinal);
            DateTime sweepStarts;
            foreach (var tenant in new[] { Tenant, "crash-b" })
            {
                keys[tenant] = await fixture.CreateTenantWithKeyAsync(tenant);
            }

            using (var writer = fixture.ClientWithKey(keys[Tenant]))
            {
                // Old entries (a tenth of them by the held actor), then entries that expire during the child's run.
                for (var start = 0; start < OldEvents; start += 100)
                {
                    await IngestAsync(writer, ServerFixture.Batch(100, i => ServerFixture.Event(actor: (start + i) % 10 == 3 ? HeldActor : $"old-{start + i}")));
                }

                sweepStarts = DateTime.UtcNow + SweepLead;
                clock.Advance(DateTimeOffset.UtcNow.AddDays(-1) + SweepLead - clock.GetUtcNow());
                for (var b = 0; b < SweptBatches; b++)
                {
                    await IngestAsync(writer, ServerFixture.Batch(SweptBatchSize, i => ServerFixture.Event(actor: $"swept-{b}-{i}")));
                    clock.Advance(SweepLength / SweptBatches);
                }

                // The retention policy through the two-person approval, and a legal hold over the held actor's entries.
                await PolicySteps.ChangeAsync(fixture, Tenant, """{"retention":{"days":1}}""");
                var hold = await writer.PostAsJsonAsync($"/v1/tenants/{Tenant}/holds", new { scope = new { actorId = HeldActor }, reason = "matter 2026-204" });
                Assert.True(hold.StatusCode == HttpStatusCode.Created, await hold.Content.ReadAsStringAsync());
            }

            var original = await ReadLogAsync(fixture.Services.GetRequiredService<ILogStore>(), Tenant);
            var held = original.Where(e => ActorOf(e.Leaf) == HeldActor).Select(e => e.Index).ToHashSet();
            Assert.Equal(OldEvents / 10, held.Count);
            await fixture.StopAsync();

            var answered = new ConcurrentBag<int>();
            var receipts = new ConcurrentBag<(string Tenant, Guid Id, ulong Index, string LeafHash)>();
            var checkpoints = new ConcurrentBag<(string Tenant, string Note)>();
            // The fixture's origin, so the child's checkpoints name the same logs; many small purge transactions.
            string[] child =
            [
                .. fixture.StorageArguments,
                "--Atp:Origin=atp.test/test-cell-1",
                "--Atp:Retention:Interval=00:00:01",
                "--Atp:Retention:EntriesPerRecord=10",
            ];
            await using (var server = await ChildServer.StartAsync(fixture.DataDirectory, fixture.AdminKey!, child))
            {
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 3).Select(w => CrashTests.WriteUntilStoppedAsync(server.BaseAddress, keys, seed * 100 + w, receipts, stop.Token)).ToList();
                var poller = CrashTests.PollCheckpointsAsync(server.BaseAddress, keys, checkpoints, stop.Token);
                var purging = RunUntilStoppedAsync(server.BaseAddress, keys[Tenant], answered, stop.Token);

                // The kill lands at a random moment after the first pass was answered, while the swept entries expire
                // (so passes are purging them, a few records each).
                var waitingSince = DateTime.UtcNow;
                while ((answered.IsEmpty || DateTime.UtcNow < sweepStarts) && DateTime.UtcNow - waitingSince < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(10);
                }

                var sweepLeft = sweepStarts + SweepLength - DateTime.UtcNow;
                await Task.Delay(random.Next(200, Math.Max(300, (int)sweepLeft.TotalMilliseconds - 1000)));
                server.Kill();
                await stop.CancelAsync();
                await Task.WhenAll([.. writers, poller, purging]);
            }

            Assert.False(answered.IsEmpty, "no retention pass was answered before the crash: the test proved nothing");

            // Restarted in process (recovery runs) with the clock on real time and the background service off, so the log
            // is seen as the crash left it; then one more pass must finish the purge.
            clock.Advance(DateTimeOffset.UtcNow - clock.GetUtcNow());
            await fixture.RestartAsync();
            var store = fixture.Services.GetRequiredService<ILogStore>();
            using var client = fixture.ClientWithKey(keys[Tenant]);
            var verifier = NoteVerifier.Parse((await client.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);

            var afterCrash = await AssertPurgesHoldAsync(store, client, original, held, verifier, checkpoints.Where(c => c.Tenant == Tenant).Select(c => c.Note), everyEntry: false);
            foreach (var tenant in keys.Keys)
            {
                var log = tenant == Tenant ? afterCrash : await ReadLogAsync(store, tenant);
                foreach (var receipt in receipts.Where(r => r.Tenant == tenant))
                {
                    Assert.True(receipt.Index < (ulong)log.Count, $"receipted entry {receipt.Index} of {tenant} is missing after the crash");
                    Assert.Equal(receipt.Id, log[(int)receipt.Index].EventId);
                    Assert.Equal(receipt.LeafHash, log[(int)receipt.Index].LeafHash.ToBase64());
                }
            }

            var purgedAtCrash = afterCrash.Count(e => e.PurgedBy is not null);
            var newestExpirable = clock.GetUtcNow().AddDays(-1);
            var run = await client.PostAsync($"/v1/tenants/{Tenant}/retention/run", null);
            Assert.True(run.StatusCode == HttpStatusCode.OK, await run.Content.ReadAsStringAsync());
            var completed = await AssertPurgesHoldAsync(store, client, original, held, verifier, [await ServerFixture.WaitForCheckpointAsync(client, Tenant, (ulong)afterCrash.Count)], everyEntry: true);
            foreach (var entry in original.Where(e => !held.Contains(e.Index) && e.ReceivedAt <= newestExpirable))
            {
                Assert.True(completed[(int)entry.Index].PurgedBy is not null, $"entry {entry.Index} expired and unheld still has its content after a pass");
            }

            output.WriteLine(
                $"seed {seed}: {answered.Count} passes answered ({answered.Sum()} purged), {receipts.Count} receipts; after the crash {purgedAtCrash} of "
                + $"{original.Count} purged in {afterCrash.Count(IsPurgeRecord)} records; after one more pass {completed.Count(e => e.PurgedBy is not null)}");
        }
        finally
        {
            await stopPump.CancelAsync();
            await pump;
            await fixture.DisposeAsync();
        }
    }

    // The log as stored now, checked against the leaves read before the crash: each original entry has its leaf or is
    // purged by a record covering it (and answers 410 naming it); each record counts exactly what it purged; held entries
    // and every other leaf are intact; the entries are included in a new checkpoint consistent with those signed before.
    private static async Task<List<LogEntry>> AssertPurgesHoldAsync(
        ILogStore store, HttpClient client, List<LogEntry> original, HashSet<ulong> held, NoteVerifier verifier, IEnumerable<string> notesBefore, bool everyEntry)
    {
        var log = await ReadLogAsync(store, Tenant);
        var purgedBy = new Dictionary<ulong, int>();
        foreach (var entry in log)
        {
            if (entry.PurgedBy is not { } record)
            {
                Assert.True(MerkleHasher.HashLeaf(entry.Leaf) == entry.LeafHash, $"entry {entry.Index} has a changed or empty leaf and no purge record");
                continue;
            }

            Assert.True(record > entry.Index && record < (ulong)log.Count && IsPurgeRecord(log[(int)record]), $"entry {entry.Index} is purged by {record}, which is no purge record in the log");
            var data = RecordData(log[(int)record]);
            Assert.True(data.From <= entry.Index && entry.Index <= data.To, $"purge record {record} ({data.From}–{data.To}) does not cover entry {entry.Index}");
            purgedBy[record] = purgedBy.GetValueOrDefault(record) + 1;
        }

        foreach (var record in log.Where(IsPurgeRecord))
        {
            Assert.True(RecordData(record).Count == purgedBy.GetValueOrDefault(record.Index), $"purge record {record.Index} counts {RecordData(record).Count}, purged {purgedBy.GetValueOrDefault(record.Index)}");
        }

        Assert.True(log.All(e => e.PurgedBy is null || (int)e.Index < original.Count), "an entry received after the set-up (not expired) was purged");
        var note = await ServerFixture.WaitForCheckpointAsync(client, Tenant, (ulong)log.Count);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var latest).IsValid);
        foreach (var before in notesBefore.Distinct())
        {
            await CrashTests.AssertConsistentAsync(client, Tenant, before, verifier, latest!);
        }

        foreach (var entry in original)
        {
            var now = log[(int)entry.Index];
            Assert.Equal(entry.LeafHash, now.LeafHash);
            Assert.False(held.Contains(entry.Index) && now.PurgedBy is not null, $"held entry {entry.Index} was purged");
            var read = await client.GetAsync($"/v1/tenants/{Tenant}/log/entries/{entry.Index}");
            if (now.PurgedBy is { } record)
            {
                var problem = await ProblemAssert.IsProblemAsync(read, HttpStatusCode.Gone, "purged");
                Assert.Equal(record, problem.GetProperty("purgeRecord").GetProperty("index").GetUInt64());
            }
            else
            {
                Assert.Equal(entry.Leaf, now.Leaf);
                Assert.Equal(entry.Leaf, await read.Content.ReadAsByteArrayAsync());
            }
        }

        // The original entries under their old leaf hash (checked above) and the purge records; with everyEntry, every
        // entry of the log (the writers' too), purged or not.
        List<LogEntry> proven = everyEntry ? log : [.. original.Select(e => log[(int)e.Index]), .. log.Where(IsPurgeRecord)];
        await Parallel.ForEachAsync(proven, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (entry, cancellationToken) =>
        {
            var proof = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/{Tenant}/log/proof/inclusion?index={entry.Index}&size={latest!.Size}", cancellationToken);
            Assert.True(InclusionProof.Verify(entry.Index, latest.Size, entry.LeafHash, ProofJson.Hashes(proof), latest.Root).IsValid, $"inclusion of {entry.Index}");
        });

        return log;
    }

    private static bool IsPurgeRecord(LogEntry entry)
    {
        if (entry.PurgedBy is not null)
        {
            return false;
        }

        using var leaf = JsonDocument.Parse(entry.Leaf);
        return leaf.RootElement.GetProperty("type").GetString() == RetentionPass.PurgeRecordType
            && leaf.RootElement.GetProperty("action").GetString() == RetentionPass.PurgeAction;
    }

    private static PurgeRecordData RecordData(LogEntry record)
    {
        using var leaf = JsonDocument.Parse(record.Leaf);
        var data = leaf.RootElement.GetProperty("data");
        return new PurgeRecordData(
            data.GetProperty("from").GetUInt64(), data.GetProperty("to").GetUInt64(), data.GetProperty("count").GetInt32(), data.GetProperty("policyVersion").GetInt32(), data.GetProperty("retainedByHold").GetInt32());
    }

    private static string ActorOf(byte[] leaf)
    {
        using var parsed = JsonDocument.Parse(leaf);
        return parsed.RootElement.GetProperty("actor").GetProperty("id").GetString()!;
    }

    private static async Task<List<LogEntry>> ReadLogAsync(ILogStore store, string tenant)
    {
        var size = (await store.GetTreeHeadAsync(tenant, CancellationToken.None))!.Size;
        var entries = new List<LogEntry>();
        while ((ulong)entries.Count < size)
        {
            entries.AddRange(await store.ListEntriesAsync(tenant, (ulong)entries.Count, 1000, CancellationToken.None));
        }

        Assert.Equal(Enumerable.Range(0, entries.Count).Select(i => (ulong)i), entries.Select(e => e.Index));
        return entries;
    }

    private static async Task IngestAsync(HttpClient writer, string batch)
    {
        var response = await writer.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(batch));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private static async Task RunUntilStoppedAsync(Uri baseAddress, string key, ConcurrentBag<int> answered, CancellationToken stop)
    {
        using var client = CrashTests.Client(baseAddress, key);

        // The first pass purges hundreds of old entries, ten per record: on a busy machine it may take longer than 10 s.
        client.Timeout = TimeSpan.FromSeconds(60);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var response = await client.PostAsync($"/v1/tenants/{Tenant}/retention/run", null, stop);
                Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(stop));
                answered.Add((await response.Content.ReadFromJsonAsync<JsonElement>(stop)).GetProperty("purged").GetInt32());
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
            {
                // The server died mid-request: no answer, no promise.
                return;
            }
        }
    }

    // The sealer and the projector measure time on the manual clock: it follows real time meanwhile.
    private static async Task PumpAsync(ManualClock clock, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            clock.Advance(TimeSpan.FromMilliseconds(20));
            await Task.Delay(20, CancellationToken.None);
        }
    }
}
