using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Server.Tests;

public sealed class EventApiTests : AcmeServerTests
{
    [Fact]
    public async Task A_single_event_and_a_batch_get_receipts_with_consecutive_indexes()
    {
        var single = await PostAsync(ServerFixture.Event());
        var batch = await PostAsync(ServerFixture.Batch(3));

        Assert.Equal([0UL], single.Select(r => r.Index));
        Assert.Equal([1UL, 2UL, 3UL], batch.Select(r => r.Index));
        Assert.All(single.Concat(batch), r => Assert.Equal(7, r.Id.Version));
    }

    [Fact]
    public async Task Receipt_leaf_hash_is_the_hash_of_the_exact_entry_bytes()
    {
        var receipt = (await PostAsync(ServerFixture.Event())).Single();

        var entry = await Acme.GetAsync($"/v1/tenants/acme/log/entries/{receipt.Index}");
        var bytes = await entry.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, entry.StatusCode);
        Assert.Equal(receipt.LeafHash, MerkleHasher.HashLeaf(bytes).ToBase64());
        Assert.Equal(bytes, JsonCanonicalizer.Canonicalize(bytes));
        using var leaf = JsonDocument.Parse(bytes);
        Assert.Equal(receipt.Id.ToString(), leaf.RootElement.GetProperty("id").GetString());
        Assert.Equal("document.update", leaf.RootElement.GetProperty("action").GetString());
    }

    [Fact]
    public async Task A_batch_with_one_bad_event_stores_nothing_and_names_the_bad_event()
    {
        var body = ServerFixture.Batch(5, i => i == 3 ? """{"type":"x","occurredAt":"yesterday","actor":{"type":"user"},"action":"nodot","bogus":1}""" : ServerFixture.Event());

        var problem = await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");

        var errors = problem.GetProperty("errors").EnumerateArray().ToList();
        Assert.All(errors, e => Assert.Equal(3, e.GetProperty("index").GetInt32()));
        var pointers = errors.Select(e => e.GetProperty("pointer").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "/occurredAt", "/actor/id", "/action", "/bogus" }, pointers);
        await AssertLogSizeAsync(0);
    }

    [Fact]
    public async Task More_than_1000_events_or_more_than_1_MiB_is_413_and_stores_nothing()
    {
        await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1001))), HttpStatusCode.RequestEntityTooLarge, "too-large");

        var big = "{\"events\":[" + string.Join(',', Enumerable.Range(0, 20).Select(_ => ServerFixture.Event().Replace("\"n\":1", $"\"pad\":\"{new string('x', 60_000)}\"", StringComparison.Ordinal))) + "]}";
        Assert.True(Encoding.UTF8.GetByteCount(big) > 1024 * 1024);
        await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(big)), HttpStatusCode.RequestEntityTooLarge, "too-large");

        // The same size sent chunked (no Content-Length) is refused while reading.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", chunked), HttpStatusCode.RequestEntityTooLarge, "too-large");
        await AssertLogSizeAsync(0);
    }

    [Fact]
    public async Task Data_larger_than_64_KiB_is_rejected()
    {
        var body = ServerFixture.Event().Replace("\"n\":1", $"\"pad\":\"{new string('x', 70_000)}\"", StringComparison.Ordinal);
        var problem = await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
        Assert.Equal("/data", problem.GetProperty("errors")[0].GetProperty("pointer").GetString());
    }

    [Theory]
    [InlineData("{\"a\":1,\"a\":2}")]
    [InlineData("{\"big\":1e400}")]
    [InlineData("{\"s\":\"\\ud800\"}")]
    public async Task Data_without_a_canonical_json_form_is_400_not_500(string data)
    {
        var body = ServerFixture.Event().Replace("{\"n\":1}", data, StringComparison.Ordinal);
        var problem = await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body)), HttpStatusCode.BadRequest, "validation");
        Assert.Equal("/data", problem.GetProperty("errors")[0].GetProperty("pointer").GetString());
        await AssertLogSizeAsync(0);
    }

    // Bytes that are not UTF-8 inside a string the reader decodes: the client's mistake, never a 500.
    [Theory]
    [InlineData("\"outcome\":\"success\"", "\"outcome\":\"succ\u00ffess\"")]
    [InlineData("\"type\":\"app.audit\"", "\"type\":\"app.\u00ffaudit\"")]
    [InlineData("\"id\":\"user-1\"", "\"id\":\"user-\u00ff1\"")]
    [InlineData("\"ip\":\"203.0.113.7\"", "\"ip\":\"203.0.\u00ff113.7\"")]
    [InlineData("{\"n\":1}", "{\"s\":\"a\u00ffb\"}")]
    [InlineData("\"type\":\"app.audit\"", "\"id\":\"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5\u00ff\",\"type\":\"app.audit\"")]
    public async Task Strings_that_are_not_utf8_are_400_and_store_nothing(string valid, string invalid)
    {
        // \u00ff stands for the lone byte 0xFF, which no UTF-8 text contains.
        var body = Encoding.Latin1.GetBytes("{\"events\":[" + ServerFixture.Event().Replace(valid, invalid, StringComparison.Ordinal) + "]}");
        Assert.Contains((byte)0xFF, body);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        var problem = await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", content), HttpStatusCode.BadRequest, "malformed-json");
        Assert.Contains("UTF-8", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await AssertLogSizeAsync(0);
    }

    [Theory]
    [InlineData("{\"events\":[", "malformed-json")]
    [InlineData("{\"events\":[]}", "validation")]
    [InlineData("{\"events\":{}}", "validation")]
    [InlineData("[1,2]", "validation")]
    public async Task Unusable_bodies_are_400(string body, string type)
    {
        await ProblemAssert.IsProblemAsync(await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body)), HttpStatusCode.BadRequest, type);
        await AssertLogSizeAsync(0);
    }

    [Fact]
    public async Task Non_json_bodies_are_415()
    {
        var response = await Acme.PostAsync("/v1/tenants/acme/events", new StringContent(ServerFixture.Event(), Encoding.UTF8, "text/plain"));
        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
    }

    [Fact]
    public async Task The_same_idempotency_key_replays_the_original_receipts_and_stores_nothing_new()
    {
        var body = ServerFixture.Batch(2);
        var first = await PostWithKeyAsync("order-42", body);
        var again = await PostWithKeyAsync("order-42", body);

        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(await first.Content.ReadAsStringAsync(), await again.Content.ReadAsStringAsync());
        await AssertLogSizeAsync(2);

        var different = await PostWithKeyAsync("order-42", ServerFixture.Batch(3));
        await ProblemAssert.IsProblemAsync(different, HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");
        await AssertLogSizeAsync(2);

        await ProblemAssert.IsProblemAsync(await PostWithKeyAsync(new string('k', 300), body), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task The_same_event_id_returns_the_original_receipt_and_a_different_event_under_it_is_409()
    {
        var id = Guid.CreateVersion7().ToString();
        var first = (await PostAsync(ServerFixture.Event(id: id))).Single();
        var resent = (await PostAsync(ServerFixture.Event(id: id))).Single();

        Assert.Equal(first, resent);
        await AssertLogSizeAsync(1);

        var conflict = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event(action: "document.delete", id: id)));
        await ProblemAssert.IsProblemAsync(conflict, HttpStatusCode.Conflict, "event-id-conflict");
        var twice = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(2, _ => ServerFixture.Event(id: Guid.Empty.ToString().Replace('0', '1')))));
        await ProblemAssert.IsProblemAsync(twice, HttpStatusCode.Conflict, "event-id-conflict");
        await AssertLogSizeAsync(1);
    }

    [Fact]
    public async Task Get_event_by_id_returns_index_leaf_hash_and_the_event()
    {
        var receipt = (await PostAsync(ServerFixture.Event(actor: "alice"))).Single();

        var body = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/events/{receipt.Id}");

        var item = body.GetProperty("event");
        Assert.Equal(receipt.Index, item.GetProperty("index").GetUInt64());
        Assert.Equal(receipt.LeafHash, item.GetProperty("leafHash").GetString());
        Assert.Equal("alice", item.GetProperty("event").GetProperty("actor").GetProperty("id").GetString());
        Assert.False(body.TryGetProperty("proof", out _));

        await ProblemAssert.IsProblemAsync(await Acme.GetAsync($"/v1/tenants/acme/events/{Guid.CreateVersion7()}"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/events/not-a-uuid"), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Get_event_with_proof_returns_a_checkpoint_and_an_inclusion_proof_that_verify()
    {
        var receipts = await PostAsync(ServerFixture.Batch(7));
        await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 7);
        var verifier = await VerifierAsync();

        var body = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/events/{receipts[4].Id}?proof=true");

        var proof = body.GetProperty("proof");
        var opened = Checkpoint.Open(Encoding.UTF8.GetBytes(proof.GetProperty("checkpoint").GetString()!), [verifier], out var checkpoint);
        Assert.True(opened.IsValid, opened.Failure);
        var inclusion = proof.GetProperty("inclusion");
        Assert.Equal(4UL, inclusion.GetProperty("index").GetUInt64());
        Assert.Equal(checkpoint!.Size, inclusion.GetProperty("treeSize").GetUInt64());
        var hashes = inclusion.GetProperty("hashes").EnumerateArray().Select(h => new Hash(Convert.FromBase64String(h.GetString()!))).ToArray();
        var leafHash = new Hash(Convert.FromBase64String(receipts[4].LeafHash));
        Assert.True(InclusionProof.Verify(4, checkpoint.Size, leafHash, hashes, checkpoint.Root).IsValid);
    }

    [Fact]
    public async Task Events_with_one_occurrence_time_are_listed_in_log_order_with_a_cursor()
    {
        var receipts = await PostAsync(ServerFixture.Batch(25));
        await ServerFixture.WaitForProjectionAsync(Acme, "acme");
        var seen = new List<ulong>();
        string? cursor = null;
        do
        {
            var page = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/events?order=asc&limit=10{(cursor is null ? "" : "&cursor=" + cursor)}");
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64()));
            cursor = page.TryGetProperty("nextCursor", out var next) ? next.GetString() : null;
        }
        while (cursor is not null);

        Assert.Equal(receipts.Select(r => r.Index), seen);
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/events?limit=0"), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/events?cursor=%%%"), HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Keys_of_one_tenant_can_neither_write_nor_read_another_tenants_log()
    {
        var globexKey = await Server.CreateTenantWithKeyAsync("globex");
        using var globex = Server.ClientWithKey(globexKey);
        var receipt = (await PostAsync(ServerFixture.Event())).Single();

        await ProblemAssert.IsProblemAsync(await globex.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/acme/events/{receipt.Id}"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await globex.GetAsync("/v1/tenants/acme/log/entries/0"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await globex.GetAsync("/v1/tenants/acme/log/checkpoint"), HttpStatusCode.Forbidden, "forbidden");

        // Looking up acme's event id through globex's own log finds nothing: ids are scoped to the tenant.
        await ProblemAssert.IsProblemAsync(await globex.GetAsync($"/v1/tenants/globex/events/{receipt.Id}"), HttpStatusCode.NotFound, "not-found");
        await AssertLogSizeAsync(1);
    }

    [Fact]
    public async Task Platform_admin_keys_do_not_carry_event_scopes()
    {
        using var admin = Server.Admin;
        await ProblemAssert.IsProblemAsync(await admin.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event())), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/acme/log/checkpoint"), HttpStatusCode.Forbidden, "forbidden");
    }

    private async Task<List<Receipt>> PostAsync(string body)
    {
        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("receipts").EnumerateArray()
            .Select(r => new Receipt(r.GetProperty("id").GetGuid(), r.GetProperty("index").GetUInt64(), r.GetProperty("leafHash").GetString()!))
            .ToList();
    }

    private Task<HttpResponseMessage> PostWithKeyAsync(string key, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tenants/acme/events") { Content = ServerFixture.Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        return Acme.SendAsync(request);
    }

    private async Task AssertLogSizeAsync(int expected)
    {
        await ServerFixture.WaitForProjectionAsync(Acme, "acme");
        var page = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/events?order=asc&limit=1000");
        Assert.Equal(expected, page.GetProperty("items").GetArrayLength());
        Assert.Equal(expected == 0 ? HttpStatusCode.NotFound : HttpStatusCode.OK, (await Acme.GetAsync($"/v1/tenants/acme/log/entries/{Math.Max(0, expected - 1)}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Acme.GetAsync($"/v1/tenants/acme/log/entries/{expected}")).StatusCode);
    }

    private async Task<NoteVerifier> VerifierAsync()
    {
        var keys = await Server.Client.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        return NoteVerifier.Parse(keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
    }

    private sealed record Receipt(Guid Id, ulong Index, string LeafHash);
}
