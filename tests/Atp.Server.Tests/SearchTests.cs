using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// The search API against a brute-force oracle: the test keeps every event it posted (with the index its receipt
/// named) and filters and orders them itself; every search must return exactly that, page by page.
/// </summary>
public sealed class SearchTests : AcmeServerTests
{
    private static readonly string[] Actions = ["document.read", "document.update", "document.delete", "document.share", "user.login", "user.logout", "user.password.reset", "billing.invoice.paid", "billing.invoice.void", "admin.role.grant"];
    private static readonly string[] Names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen", "Ken Thompson"];
    private static readonly string[] Outcomes = ["success", "failure", "unknown"];
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private sealed record Posted(ulong Index, DateTimeOffset OccurredAt, string ActorType, string ActorId, string? ActorName, string Action, string Outcome, (string Type, string Id, string? Name)[] Targets)
    {
        public IEnumerable<string> Words =>
            // The actor's name is sealed before the leaf is written (classified pii), so free text finds it no more.
            new[] { Action }.Concat(Targets.Select(t => t.Name)).Where(w => w is not null)
                .SelectMany(w => w!.Split([' ', '.'], StringSplitOptions.RemoveEmptyEntries)).Select(w => w.ToLowerInvariant());
    }

    private readonly List<Posted> _posted = [];

    private static string EventJson(Random random, out DateTimeOffset occurredAt, out string actorType, out string actorId, out string? actorName, out string action, out string outcome, out (string, string, string?)[] targets)
    {
        // A year of timestamps at whole-minute resolution, so some events share an occurrence time.
        occurredAt = Start.AddMinutes(random.Next(0, 365 * 24 * 60 / 500) * 500);
        actorType = random.Next(4) == 0 ? "service" : "user";
        actorId = $"{actorType}-{random.Next(12)}";
        actorName = random.Next(5) == 0 ? null : Names[random.Next(Names.Length)];
        action = Actions[random.Next(Actions.Length)];
        outcome = Outcomes[random.Next(Outcomes.Length)];
        targets = [.. Enumerable.Range(0, random.Next(3)).Select(_ =>
        {
            var type = random.Next(3) switch { 0 => "document", 1 => "invoice", _ => "user" };
            return (type, $"{type[0]}-{random.Next(15)}", random.Next(2) == 0 ? null : Names[random.Next(Names.Length)]);
        }).DistinctBy(t => (t.type, t.Item2))];
        var json = new StringBuilder("{\"type\":\"acme.audit.v1\",\"occurredAt\":\"")
            .Append(occurredAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))
            .Append("\",\"actor\":").Append(Party(actorType, actorId, actorName))
            .Append(",\"action\":\"").Append(action).Append("\",\"outcome\":\"").Append(outcome).Append("\",\"targets\":[")
            .AppendJoin(',', targets.Select(t => Party(t.Item1, t.Item2, t.Item3))).Append("]}");
        return json.ToString();
    }

    private static string Party(string type, string id, string? name) =>
        name is null ? $"{{\"type\":\"{type}\",\"id\":\"{id}\"}}" : $"{{\"type\":\"{type}\",\"id\":\"{id}\",\"name\":\"{name}\"}}";

    private async Task PostAsync(Random random, int count, HttpClient? client = null)
    {
        var events = new List<(string Json, Posted Partial)>();
        for (var i = 0; i < count; i++)
        {
            var json = EventJson(random, out var at, out var actorType, out var actorId, out var actorName, out var action, out var outcome, out var targets);
            events.Add((json, new Posted(0, at, actorType, actorId, actorName, action, outcome, targets)));
        }

        var response = await (client ?? Acme).PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + string.Join(',', events.Select(e => e.Json)) + "]}"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var receipts = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts").EnumerateArray().ToArray();
        lock (_posted)
        {
            _posted.AddRange(events.Select((e, i) => e.Partial with { Index = receipts[i].GetProperty("index").GetUInt64() }));
        }
    }

    private async Task SeedAsync(int count = 600)
    {
        var random = new Random(42);
        for (var posted = 0; posted < count; posted += 100)
        {
            await PostAsync(random, Math.Min(100, count - posted));
        }

        await ServerFixture.WaitForProjectionAsync(Acme, "acme");
    }

    private static IEnumerable<Posted> Ordered(IEnumerable<Posted> events, bool ascending) =>
        ascending ? events.OrderBy(e => e.OccurredAt).ThenBy(e => e.Index) : events.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Index);

    private async Task<List<ulong>> SearchAllAsync(string filters, int limit = 37)
    {
        var indexes = new List<ulong>();
        string? cursor = null;
        do
        {
            var response = await Acme.GetAsync($"/v1/tenants/acme/events?limit={limit}{filters}{(cursor is null ? "" : "&cursor=" + cursor)}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            var page = await response.Content.ReadFromJsonAsync<JsonElement>();
            var items = page.GetProperty("items").EnumerateArray().ToArray();
            Assert.True(items.Length <= limit);
            indexes.AddRange(items.Select(i => i.GetProperty("index").GetUInt64()));
            cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
        }
        while (cursor is not null);
        return indexes;
    }

    public static TheoryData<string, string> Filters => new()
    {
        { "none", "" },
        { "from", "&from=2026-06-01T00:00:00Z" },
        { "to", "&to=2026-03-15T12:30:00Z" },
        { "window", "&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z" },
        { "actor", "&actor=user-3" },
        { "actorType", "&actorType=service" },
        { "action", "&action=document.update" },
        { "actionPrefix", "&action=document.*" },
        { "actionPrefixDeep", "&action=billing.invoice.*" },
        { "targetType", "&targetType=invoice" },
        { "targetTypeAndId", "&targetType=document&targetId=d-7" },
        { "targetId", "&targetId=u-2" },
        { "outcome", "&outcome=failure" },
        { "text", "&q=grace" },
        { "textTwoTerms", "&q=alan%20invoice" },
        { "combined", "&actorType=user&action=user.*&outcome=success&from=2026-02-01T00:00:00Z" },
        { "combinedTarget", "&targetType=document&action=document.*&q=hopper" },
        { "ascending", "&order=asc&action=user.login" },
        { "ascendingWindow", "&order=asc&from=2026-07-01T00:00:00Z&to=2026-09-01T00:00:00Z&actor=service-1" },
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task Each_filter_alone_and_combined_matches_a_brute_force_search_page_by_page(string name, string filters)
    {
        await SeedAsync();
        var query = System.Web.HttpUtility.ParseQueryString(filters);
        bool Matches(Posted e) =>
            (query["from"] is not { } from || e.OccurredAt >= DateTimeOffset.Parse(from, CultureInfo.InvariantCulture))
            && (query["to"] is not { } to || e.OccurredAt < DateTimeOffset.Parse(to, CultureInfo.InvariantCulture))
            && (query["actor"] is not { } actor || e.ActorId == actor)
            && (query["actorType"] is not { } actorType || e.ActorType == actorType)
            && (query["action"] is not { } action || (action.EndsWith('*') ? e.Action.StartsWith(action[..^1], StringComparison.Ordinal) : e.Action == action))
            && (query["outcome"] is not { } outcome || e.Outcome == outcome)
            && (query["targetType"] is not { } tt || e.Targets.Any(t => t.Type == tt && (query["targetId"] is not { } tid || t.Id == tid)))
            && (query["targetType"] is not null || query["targetId"] is not { } onlyId || e.Targets.Any(t => t.Id == onlyId))
            && (query["q"] is not { } q || q.Split(' ').All(term => e.Words.Contains(term.ToLowerInvariant())));

        var expected = Ordered(_posted.Where(Matches), query["order"] == "asc").Select(e => e.Index).ToList();
        var actual = await SearchAllAsync(filters);

        Assert.True(expected.Count > 0, $"{name}: the seed data should give this filter something to find");
        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task Paging_while_events_arrive_never_repeats_or_skips_an_event()
    {
        await SeedAsync(300);
        using var writer = Server.ClientWithKey(await Server.CreateKeyAsync("acme", "events:write"));
        using var stop = new CancellationTokenSource();
        var random = new Random(7);
        var ingest = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await PostAsync(random, 20, writer);
            }
        });

        List<ulong> paged;
        try
        {
            paged = await SearchAllAsync("&action=document.*", limit: 5);
        }
        finally
        {
            await stop.CancelAsync();
            await ingest;
        }

        // Everything the snapshot could hold (every index below the largest seen) that matches, exactly once, in order.
        var snapshot = paged.Max() + 1;
        var expected = Ordered(_posted.Where(e => e.Index < snapshot && e.Action.StartsWith("document.", StringComparison.Ordinal)), ascending: false).Select(e => e.Index).ToList();
        Assert.Equal(paged.Count, paged.Distinct().Count());
        Assert.Equal(expected, paged);
        Assert.True(_posted.Count > 300, "events were posted while paging");
    }

    [Fact]
    public async Task Rebuilding_the_read_models_from_the_log_gives_the_same_answers()
    {
        await SeedAsync(400);
        string[] searches = ["", "&q=turing", "&targetType=invoice&order=asc", "&actor=user-5&action=user.*"];
        var before = new List<List<ulong>>();
        foreach (var search in searches)
        {
            before.Add(await SearchAllAsync(search));
        }

        using var admin = Server.Admin;
        var rebuilt = await admin.PostAsync("/v1/tenants/acme/projection/rebuild", null);
        Assert.Equal(HttpStatusCode.OK, rebuilt.StatusCode);
        Assert.Equal(400UL, (await rebuilt.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("projectedSize").GetUInt64());
        await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/projection/rebuild", null), HttpStatusCode.Forbidden, "forbidden");

        for (var i = 0; i < searches.Length; i++)
        {
            Assert.Equal(before[i], await SearchAllAsync(searches[i]));
        }
    }

    [Fact]
    public async Task Verify_on_read_returns_a_checkpoint_and_a_proof_per_event_that_verify()
    {
        await SeedAsync(250);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 250);
        using var anonymous = Server.ClientWithKey(null);
        var keys = await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        var verifier = NoteVerifier.Parse(keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);

        var page = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?verify=true&action=billing.*&limit=50");

        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(page.GetProperty("checkpoint").GetString()!), [verifier], out var checkpoint).IsValid);
        var items = page.GetProperty("items").EnumerateArray().ToArray();
        Assert.NotEmpty(items);
        foreach (var item in items)
        {
            var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(item.GetProperty("event").GetRawText()));
            var inclusion = item.GetProperty("inclusion");
            Assert.Equal(checkpoint!.Size, inclusion.GetProperty("treeSize").GetUInt64());
            Assert.True(InclusionProof.Verify(item.GetProperty("index").GetUInt64(), checkpoint.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(inclusion), checkpoint.Root).IsValid);
        }

        var plain = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?action=billing.*&limit=50");
        Assert.False(plain.TryGetProperty("checkpoint", out _));
    }

    [Fact]
    public async Task The_atp_command_verifies_a_real_verify_on_read_response_and_fails_a_tampered_one()
    {
        await SeedAsync(150);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 150);
        using var anonymous = Server.ClientWithKey(null);
        var key = (await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
        var page = await Acme.GetStringAsync("/v1/tenants/acme/events?verify=true&targetType=document&limit=40");
        var single = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?limit=1");
        var id = single.GetProperty("items")[0].GetProperty("event").GetProperty("id").GetString();
        var one = await Acme.GetStringAsync($"/v1/tenants/acme/events/{id}?verify=true");
        var work = Directory.CreateTempSubdirectory("atp-verify-events-").FullName;
        try
        {
            var pageFile = Path.Combine(work, "page.json");
            var oneFile = Path.Combine(work, "one.json");
            var tamperedFile = Path.Combine(work, "tampered.json");
            await File.WriteAllTextAsync(pageFile, page);
            await File.WriteAllTextAsync(oneFile, one);
            await File.WriteAllTextAsync(tamperedFile, page.Replace("\"outcome\":\"failure\"", "\"outcome\":\"success\"", StringComparison.Ordinal));
            Assert.NotEqual(page, await File.ReadAllTextAsync(tamperedFile));
            var none = new Dictionary<string, string>();

            var verified = await AuditorTests.AtpAsync(none, "verify", "events", pageFile, "--key", key, "--origin", "atp.test/test-cell-1/acme");
            var verifiedOne = await AuditorTests.AtpAsync(none, "verify", "events", oneFile, "--key", key);
            var tampered = await AuditorTests.AtpAsync(none, "verify", "events", tamperedFile, "--key", key);

            Assert.True(verified.ExitCode == 0, verified.Error);
            Assert.StartsWith("verified: 40 events against checkpoint atp.test/test-cell-1/acme", verified.Output, StringComparison.Ordinal);
            Assert.True(verifiedOne.ExitCode == 0, verifiedOne.Error);
            Assert.Equal(1, tampered.ExitCode);
            Assert.Contains("FAILED: event at index", tampered.Error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task A_page_stops_before_the_response_size_cap_and_the_cursor_continues()
    {
        await Server.DisposeAsync();
        var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Query:MaxResponseBytes"] = "20000" });
        using var client = server.ClientWithKey(await server.CreateTenantWithKeyAsync("big"));
        var padding = new string('x', 3000);
        var batch = "{\"events\":[" + string.Join(',', Enumerable.Range(0, 30).Select(i => "{\"type\":\"acme.audit.v1\",\"occurredAt\":\"2026-11-26T10:00:00Z\",\"actor\":{\"type\":\"user\",\"id\":\"u\"},\"action\":\"doc.read\",\"outcome\":\"success\",\"data\":{\"pad\":\"" + padding + "\"}}")) + "]}";
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/big/events", ServerFixture.Json(batch))).StatusCode);
        await ServerFixture.WaitForProjectionAsync(client, "big");

        var seen = new List<ulong>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/big/events?order=asc&limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}");
            var items = page.GetProperty("items").EnumerateArray().ToArray();
            Assert.InRange(items.Length, 1, 6);
            seen.AddRange(items.Select(i => i.GetProperty("index").GetUInt64()));
            cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(Enumerable.Range(0, 30).Select(i => (ulong)i), seen);
        Assert.True(pages >= 5);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Invalid_filters_are_400_naming_the_parameter()
    {
        await SeedAsync(100);
        var cursor = (await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?limit=5&action=user.*")).GetProperty("nextCursor").GetString()!;
        var tampered = (cursor[0] == 'A' ? "B" : "A") + cursor[1..];
        (string Query, string Parameter)[] cases =
        [
            ("from=yesterday", "from"), ("from=2026-01-01", "from"), ("to=2026-01-01T00:00:00", "to"),
            ("from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z", "to"), ("action=*.read", "action"), ("action=*", "action"),
            ("outcome=maybe", "outcome"), ("order=up", "order"), ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
            ("verify=perhaps", "verify"), ("actr=user-1", "actr"), ("actor=a&actor=b", "actor"), ($"q={new string('x', 201)}", "q"),
            ($"cursor={tampered}&action=user.*", "cursor"), ($"cursor={cursor}&action=document.*", "cursor"), ($"cursor={cursor}&action=user.*&order=asc", "cursor"),
        ];

        foreach (var (query, parameter) in cases)
        {
            var problem = await ProblemAssert.IsProblemAsync(await Acme.GetAsync($"/v1/tenants/acme/events?{query}"), HttpStatusCode.BadRequest, "validation");
            Assert.Contains(problem.GetProperty("errors").EnumerateArray(), e => e.GetString()!.StartsWith(parameter + ":", StringComparison.Ordinal));
        }

        // The same cursor with its own filters still works (limit may change between pages).
        Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync($"/v1/tenants/acme/events?limit=9&action=user.*&cursor={cursor}")).StatusCode);
    }

    [Fact]
    public async Task A_cursor_of_one_tenant_is_refused_for_another()
    {
        await SeedAsync(50);
        var globex = Server.ClientWithKey(await Server.CreateTenantWithKeyAsync("globex"));
        await globex.PostAsync("/v1/tenants/globex/events", ServerFixture.Json(ServerFixture.Batch(20)));
        await ServerFixture.WaitForProjectionAsync(globex, "globex");
        var cursor = (await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?limit=5")).GetProperty("nextCursor").GetString()!;

        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/globex/events?limit=5&cursor={cursor}"), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Projection_status_reports_searchable_and_total_entries()
    {
        await SeedAsync(120);

        var status = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/projection");

        Assert.Equal(120UL, status.GetProperty("projectedSize").GetUInt64());
        Assert.Equal(120UL, status.GetProperty("treeSize").GetUInt64());
    }
}
