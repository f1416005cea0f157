using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>The log as C2SP tlog-tiles: checked by an independent client, cached as immutable, bounded by the signed checkpoint.</summary>
public sealed class TilesApiTests : AcmeServerTests
{
    private const string Prefix = "/v1/tenants/acme/log/";

    [Fact]
    public async Task Logs_of_many_sizes_verify_with_an_independent_tlog_tiles_client()
    {
        var client = new TlogTilesClient(Acme, Prefix);
        ulong size = 0;
        foreach (var target in new ulong[] { 1, 255, 256, 257, 65_536 + 3 })
        {
            // One append per step, so the sealer signs exactly this size.
            await AppendAsync((int)(target - size));
            size = target;
            await ServerFixture.WaitForCheckpointAsync(Acme, "acme", size);

            var result = await client.FetchAndVerifyAsync();

            Assert.Equal(size, result.Size);
            Assert.Equal((int)size, result.Entries.Count);
            Assert.Equal(result.Root, TlogTilesClient.RootOfEntries(result.Entries));
            foreach (var index in new[] { 0UL, size / 2, size - 1 })
            {
                Assert.Equal(await Acme.GetByteArrayAsync($"{Prefix}entries/{index}"), result.Entries[(int)index]);
            }
        }

        // 65,539 leaves: 256 full level-0 tiles and one of width 3, a full level-1 tile, a level-2 tile of width 1.
        Assert.Equal(256 * 32, (await Acme.GetByteArrayAsync(Prefix + "tile/1/000")).Length);
        Assert.Equal(32, (await Acme.GetByteArrayAsync(Prefix + "tile/2/000.p/1")).Length);
        Assert.Equal(3 * 32, (await Acme.GetByteArrayAsync(Prefix + "tile/0/256.p/3")).Length);
    }

    [Fact]
    public async Task Full_tiles_are_immutable_with_a_strong_etag_and_partial_tiles_are_revalidated()
    {
        await AppendAsync(300);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 300);

        foreach (var path in new[] { "tile/0/000", "tile/entries/000" })
        {
            var full = await Acme.GetAsync(Prefix + path);
            Assert.Equal(HttpStatusCode.OK, full.StatusCode);
            Assert.Equal("application/octet-stream", full.Content.Headers.ContentType?.MediaType);
            var caching = full.Headers.CacheControl!;
            Assert.True(caching.Private);
            Assert.Equal(TimeSpan.FromDays(365), caching.MaxAge);
            Assert.Contains(caching.Extensions, e => e.Name == "immutable");
            var etag = full.Headers.ETag!;
            Assert.False(etag.IsWeak);

            using var again = new HttpRequestMessage(HttpMethod.Get, Prefix + path);
            again.Headers.IfNoneMatch.Add(etag);
            var notModified = await Acme.SendAsync(again);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
            Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
            Assert.Equal(etag, notModified.Headers.ETag);

            using var other = new HttpRequestMessage(HttpMethod.Get, Prefix + path);
            other.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"something-else\""));
            Assert.Equal(HttpStatusCode.OK, (await Acme.SendAsync(other)).StatusCode);
        }

        foreach (var path in new[] { "tile/0/001.p/44", "tile/entries/001.p/44", "tile/1/000.p/1" })
        {
            var partial = await Acme.GetAsync(Prefix + path);
            Assert.Equal(HttpStatusCode.OK, partial.StatusCode);
            Assert.Equal("no-cache", partial.Headers.CacheControl?.ToString());
            Assert.NotNull(partial.Headers.ETag);
        }

        // The same full tile is the same bytes and tag after the log grew.
        var before = await Acme.GetAsync(Prefix + "tile/0/000");
        await AppendAsync(10);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 310);
        var after = await Acme.GetAsync(Prefix + "tile/0/000");
        Assert.Equal(before.Headers.ETag, after.Headers.ETag);
        Assert.Equal(await before.Content.ReadAsByteArrayAsync(), await after.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Tiles_beyond_the_signed_checkpoint_or_of_another_width_are_404()
    {
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync(Prefix + "tile/0/000.p/1"), HttpStatusCode.NotFound, "not-found");
        await AppendAsync(300);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 300);

        foreach (var path in new[]
        {
            "tile/0/002", "tile/0/001", "tile/0/001.p/43", "tile/0/001.p/45", "tile/0/000.p/255", "tile/1/000", "tile/2/000.p/1",
            "tile/entries/001", "tile/entries/002.p/1", "tile/7/000.p/1", "tile/63/000", "tile/0/x001/000",
        })
        {
            var problem = await ProblemAssert.IsProblemAsync(await Acme.GetAsync(Prefix + path), HttpStatusCode.NotFound, "not-found");
            Assert.Contains("300", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        // Appended but not yet signed: the tile of the larger tree is not served until a checkpoint covers it.
        await using var paused = await ServerFixture.StartAsync(checkpointInterval: "01:00:00");
        using var client = paused.ClientWithKey(await paused.CreateTenantWithKeyAsync("slow"));
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/slow/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/slow/log/tile/0/000.p/3"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/slow/log/tile/entries/000.p/3"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await client.GetAsync("/v1/tenants/slow/log/checkpoint"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Tiles_need_events_read_on_the_same_tenant()
    {
        await AppendAsync(3);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 3);
        using var globex = Server.ClientWithKey(await Server.CreateTenantWithKeyAsync("globex"));
        using var writer = Server.ClientWithKey(await Server.CreateKeyAsync("acme", "events:write"));
        using var anonymous = Server.ClientWithKey(null);

        foreach (var path in new[] { "tile/0/000.p/3", "tile/entries/000.p/3" })
        {
            await ProblemAssert.IsProblemAsync(await globex.GetAsync(Prefix + path), HttpStatusCode.Forbidden, "forbidden");
            await ProblemAssert.IsProblemAsync(await writer.GetAsync(Prefix + path), HttpStatusCode.Forbidden, "forbidden");
            await ProblemAssert.IsProblemAsync(await anonymous.GetAsync(Prefix + path), HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync(Prefix + path)).StatusCode);
        }
    }

    [Theory]
    [InlineData("tile/00/000")]
    [InlineData("tile/64/000")]
    [InlineData("tile/-1/000")]
    [InlineData("tile/a/000")]
    [InlineData("tile/0/0")]
    [InlineData("tile/0/00")]
    [InlineData("tile/0/0000")]
    [InlineData("tile/0/x000/001")]
    [InlineData("tile/0/001/000")]
    [InlineData("tile/0/x1/000")]
    [InlineData("tile/0/x001/x000")]
    [InlineData("tile/0/000.p/0")]
    [InlineData("tile/0/000.p/256")]
    [InlineData("tile/0/000.p/05")]
    [InlineData("tile/0/000.p/")]
    [InlineData("tile/0/000.p/1/2")]
    [InlineData("tile/0/000/")]
    [InlineData("tile/0/x018/x446/x744/x073/x709/x551/616")]
    [InlineData("tile/entries/abc")]
    [InlineData("tile/entries/000.p/x")]
    public async Task Non_canonical_tile_paths_are_400_problems(string path)
    {
        await AppendAsync(1);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 1);

        await ProblemAssert.IsProblemAsync(await Acme.GetAsync(Prefix + path), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task A_tile_read_costs_one_read_like_a_plain_entry_read()
    {
        await AppendAsync(600);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 600);
        using var admin = Server.Admin;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("/v1/tenants/acme", new { limits = new { readCostPerSecond = 1 } })).StatusCode);

        // The read-cost bucket holds one largest read (ReadCost.Largest units) and refills 1 a second. It starts full,
        // so that many tile reads pass whatever the timing; at a cost of 2 half of them would be refused.
        for (var i = 0; i < Gateway.ReadCost.Largest / 2; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync(Prefix + "tile/0/000")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync(Prefix + "tile/entries/001")).StatusCode);
        }

        var endpoints = Server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        foreach (var pattern in new[] { "/v1/tenants/{tenant}/log/tile/{level}/{**tile}", "/v1/tenants/{tenant}/log/tile/entries/{**tile}" })
        {
            var endpoint = Assert.Single(endpoints, e => e.RoutePattern.RawText == pattern);
            var cost = endpoint.Metadata.GetMetadata<Gateway.ReadCost>();
            Assert.NotNull(cost);
            Assert.Equal(1, cost.Of(new Microsoft.AspNetCore.Http.DefaultHttpContext().Request));
        }

        // The bucket is spent: with one unit a second coming back, one of the next 50 reads is refused.
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 50 && refused is null; i++)
        {
            var response = await Acme.GetAsync(Prefix + "tile/0/001");
            refused = response.StatusCode == HttpStatusCode.TooManyRequests ? response : null;
        }

        Assert.NotNull(refused);
        Assert.Equal("\"read-cost\";q=1;w=1", refused.Headers.GetValues("RateLimit-Policy").Single());
    }

    [Fact]
    public async Task An_altered_leaf_makes_its_entry_bundle_an_integrity_failure_never_wrong_bytes()
    {
        await AppendAsync(5);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 5);
        var original = await Acme.GetByteArrayAsync(Prefix + "entries/2");
        Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync(Prefix + "tile/entries/000.p/5")).StatusCode);

        await new StoreTamper(Server.DataDirectory, Server.StorageArguments).FlipAsync("leaf", "acme", 2, StoreTamper.OffsetOf(original, "document.update"), 0x20);
        await Server.RestartAsync();
        using var acme = Server.ClientWithKey(Acme.DefaultRequestHeaders.Authorization!.Parameter);

        var bundle = await acme.GetAsync(Prefix + "tile/entries/000.p/5");
        var problem = await ProblemAssert.IsProblemAsync(bundle, HttpStatusCode.InternalServerError, "integrity-failure");
        Assert.Contains("entry 2", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // The hash tile still serves the stored leaf hashes, which vouch for the original bytes.
        var tile = await acme.GetByteArrayAsync(Prefix + "tile/0/000.p/5");
        Assert.Equal(TlogTilesClient.LeafHash(original), tile[64..96]);
    }

    [Fact]
    public async Task Ingest_refuses_an_event_whose_leaf_would_exceed_the_tlog_tiles_entry_limit()
    {
        // 65,410 bytes of data are within the 64 KiB data limit, but the envelope takes the leaf past 65,535 bytes.
        var big = ServerFixture.Event().Replace("\"n\":1", $"\"pad\":\"{new string('x', 65_400)}\"", StringComparison.Ordinal);
        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + ServerFixture.Event() + "," + big + "]}"));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "validation");
        var error = problem.GetProperty("errors")[0];
        Assert.Equal(1, error.GetProperty("index").GetInt32());
        Assert.Contains("65535", error.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));

        // Just under the limit is stored, and fits an entry bundle.
        var leafOfSmall = LeafWriter.MaxLeafBytes - 700;
        var fits = ServerFixture.Event().Replace("\"n\":1", $"\"pad\":\"{new string('y', leafOfSmall)}\"", StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(fits))).StatusCode);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 1);
        var bundle = await Acme.GetByteArrayAsync(Prefix + "tile/entries/000.p/1");
        Assert.Equal(bundle.Length - 2, (bundle[0] << 8) | bundle[1]);
        Assert.True(bundle.Length - 2 > 64_000);
    }

    [Fact]
    public async Task A_leaf_stored_before_the_limit_and_larger_than_it_is_409_in_a_bundle_but_readable_alone()
    {
        await AppendAsync(1);
        var small = System.Text.Encoding.UTF8.GetString(await Acme.GetByteArrayAsync(Prefix + "entries/0"));
        var leaf = System.Text.Encoding.UTF8.GetBytes(small.Replace("\"data\":{\"n\":0}", $"\"data\":{{\"pad\":\"{new string('z', 70_000)}\"}}", StringComparison.Ordinal));
        Assert.True(leaf.Length > LeafWriter.MaxLeafBytes);

        // As an older server stored it: straight through the store, with its true leaf hash.
        var store = Server.Services.GetRequiredService<ILogStore>();
        var appended = await store.AppendAsync(
            new AppendRequest("acme", [new PendingEntry(Guid.CreateVersion7(), false, leaf, Atp.Integrity.MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UtcNow)], null), CancellationToken.None);
        Assert.IsType<Appended>(appended);
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 2);

        var problem = await ProblemAssert.IsProblemAsync(await Acme.GetAsync(Prefix + "tile/entries/000.p/2"), HttpStatusCode.Conflict, "entry-too-large");
        Assert.Contains("Entry 1", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(leaf, await Acme.GetByteArrayAsync(Prefix + "entries/1"));
        Assert.Equal(HttpStatusCode.OK, (await Acme.GetAsync(Prefix + "tile/0/000.p/2")).StatusCode);
    }

    private Task AppendAsync(int count) => AppendAsync(Server, "acme", count);

    /// <summary>Appends <paramref name="count"/> events as one unit through the server's own ingestion (fast for large logs).</summary>
    internal static async Task AppendAsync(ServerFixture server, string tenant, int count, string actor = "user")
    {
        var ingestion = server.Services.GetRequiredService<IngestionService>();
        var drafts = new EventDraft[count];
        for (var i = 0; i < count; i++)
        {
            using var data = JsonDocument.Parse($"{{\"n\":{i}}}");
            drafts[i] = new EventDraft(null, "app.audit", new DateTimeOffset(2026, 11, 26, 10, 15, 30, TimeSpan.Zero), new Party("user", $"{actor}-{i}", null),
                "document.update", [new Party("document", "doc-1", null)], "success", null, data.RootElement.Clone())
            {
                CanonicalData = System.Text.Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"),
            };
        }

        var outcome = await ingestion.AppendAsync(tenant, drafts, null, CancellationToken.None);
        Assert.IsType<Appended>(outcome);
    }
}
