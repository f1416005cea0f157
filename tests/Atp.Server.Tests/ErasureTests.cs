using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Keys;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>
/// Erasure by crypto-shredding over real Kestrel and the configured engine: the subject's data key is destroyed with
/// a tombstone appended in the same transaction; every earlier checkpoint, inclusion and consistency proof still
/// verifies with the leaves unchanged; the other subjects' keys stay; the old key's bytes are gone from the store.
/// </summary>
public sealed class ErasureTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async Task InitializeAsync() =>
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Classification:SealEnvelopeFields"] = "true" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Erasing_a_subject_destroys_its_key_with_a_tombstone_and_every_earlier_proof_still_verifies()
    {
        using var admin = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        using var writer = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsWrite, Scopes.EventsRead));
        var marker = Guid.NewGuid().ToString("N")[..10];
        var erased = $"subject-{marker}-s";
        var kept = $"subject-{marker}-t";
        var batch = Enumerable.Range(0, 8).Select(i => Event(i % 2 == 0 ? erased : kept, $"Person {marker} {i}", AgentOf(marker, i)));

        // Every sealed value of the erased subject, in each encoding a byte search must not find it in afterwards.
        var erasedForms = new[] { 0, 2, 4, 6 }.SelectMany(i => new[] { $"Person {marker} {i}", AgentOf(marker, i) }).SelectMany(ClassifiedFieldTests.Forms).ToArray();
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + string.Join(',', batch) + "]}"))).StatusCode);
        var firstNote = await ServerFixture.WaitForCheckpointAsync(admin, "acme", 8);
        var leavesBefore = new List<byte[]>();
        for (var i = 0; i < 8; i++)
        {
            leavesBefore.Add(await admin.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}"));
        }

        // Before: a pii:read caller sees both subjects' names in clear (so the check after the erasure can fail).
        using var piiReader = _server.ClientWithKey(await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead));
        await ServerFixture.WaitForProjectionAsync(piiReader, "acme");
        var page = await piiReader.GetStringAsync("/v1/tenants/acme/events?limit=50");
        Assert.Contains($"Person {marker} 0", page, StringComparison.Ordinal);
        Assert.Contains($"Person {marker} 1", page, StringComparison.Ordinal);

        var erasedKeyId = KeyIdOf(leavesBefore[0]);
        var keptKeyId = KeyIdOf(leavesBefore[1]);
        var (_, keysBefore) = await ClassifiedFieldTests.ReadStoredAsync(_server.DataDirectory, _server.StorageArguments);
        var erasedWrapped = keysBefore[erasedKeyId];

        // Refused with nothing appended: not a tenant admin, no subject, no reason.
        Assert.Equal(HttpStatusCode.Forbidden, (await writer.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = erased, reason = "r" })).StatusCode);
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { reason = "r" }), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = erased }), HttpStatusCode.BadRequest, "validation");
        Assert.Equal(8UL, await _server.TreeSizeAsync("acme"));

        var response = await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = erased, reason = "GDPR art. 17 request #4711" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var erasure = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(erasedKeyId, erasure.GetProperty("subjectKeyId").GetString());
        Assert.True(erasure.GetProperty("keyDestroyed").GetBoolean());
        Assert.Equal(8UL, erasure.GetProperty("tombstone").GetProperty("index").GetUInt64());

        // After: the erased subject's fields stay sealed for every caller, pii:read included; the other subject's are
        // still shown in clear; every read succeeds.
        await ServerFixture.WaitForProjectionAsync(piiReader, "acme");
        var afterPage = await piiReader.GetStringAsync("/v1/tenants/acme/events?limit=50");
        foreach (var i in new[] { 0, 2, 4, 6 })
        {
            Assert.DoesNotContain($"Person {marker} {i}", afterPage, StringComparison.Ordinal);
            var single = await piiReader.GetStringAsync($"/v1/tenants/acme/events/{JsonDocument.Parse(leavesBefore[i]).RootElement.GetProperty("id").GetString()}?verify=true");
            Assert.DoesNotContain($"Person {marker}", single, StringComparison.Ordinal);
            Assert.Contains(FieldToken.Prefix, single, StringComparison.Ordinal);

            // The reader is told which fields stayed sealed and why: the key is gone.
            var unopened = JsonDocument.Parse(single).RootElement.GetProperty("event").GetProperty("unopened");
            foreach (var pointer in new[] { "/actor/name", "/context/ip", "/context/userAgent" })
            {
                Assert.Equal("key-missing", unopened.GetProperty(pointer).GetString());
            }
        }

        using (var keptPage = JsonDocument.Parse(afterPage))
        {
            var keptItems = keptPage.RootElement.GetProperty("items").EnumerateArray().Where(item => item.TryGetProperty("sealed", out _)).ToList();
            Assert.Equal(4, keptItems.Count);
            Assert.All(keptItems, item => Assert.False(item.TryGetProperty("unopened", out _)));
        }

        foreach (var i in new[] { 1, 3, 5, 7 })
        {
            Assert.Contains($"Person {marker} {i}", afterPage, StringComparison.Ordinal);
        }

        // The tombstone names the key id, the reason and who asked; never the subject.
        var tombstoneLeaf = await admin.GetByteArrayAsync("/v1/tenants/acme/log/entries/8");
        Assert.DoesNotContain(erased, Encoding.UTF8.GetString(tombstoneLeaf), StringComparison.Ordinal);
        using (var tombstone = JsonDocument.Parse(tombstoneLeaf))
        {
            Assert.Equal("atp.erasure.v1", tombstone.RootElement.GetProperty("type").GetString());
            Assert.Equal(erasedKeyId, tombstone.RootElement.GetProperty("data").GetProperty("subjectKeyId").GetString());
            Assert.Equal("GDPR art. 17 request #4711", tombstone.RootElement.GetProperty("data").GetProperty("reason").GetString());
            Assert.Equal("api-key", tombstone.RootElement.GetProperty("actor").GetProperty("type").GetString());
        }

        // A subject without a key: the tombstone is recorded, no key destroyed.
        var unknown = await (await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "never-seen", reason = "request #4712" })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(unknown.GetProperty("keyDestroyed").GetBoolean());
        Assert.Equal(9UL, unknown.GetProperty("tombstone").GetProperty("index").GetUInt64());

        await AssertEarlierProofsVerifyAsync(admin, "acme", firstNote, leavesBefore, 10);

        // Neither the erased subject's values (in any encoding) nor the destroyed key's bytes are in any file of the data
        // directory (SQLite; read while the server runs, before anything new is written over them) or in a dump of the
        // database (PostgreSQL keeps the dead key row until VACUUM: docs/classification.md says what that guarantees).
        if (TestStorage.IsPostgres)
        {
            var dumped = await ClassifiedFieldTests.DumpDatabaseAsync(_server);
            ClassifiedFieldTests.AssertAbsent("pg_dump", dumped, erasedForms);
            var dump = Encoding.UTF8.GetString(dumped);
            Assert.DoesNotContain(Convert.ToHexStringLower(erasedWrapped), dump, StringComparison.Ordinal);
            Assert.Contains(Convert.ToHexStringLower(keysBefore[keptKeyId]), dump, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(erasure.GetProperty("filesScrubbed").GetBoolean());
            var found = 0;
            foreach (var path in Directory.EnumerateFiles(_server.DataDirectory, "*", SearchOption.AllDirectories))
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var content = new MemoryStream();
                await file.CopyToAsync(content);
                Assert.True(content.GetBuffer().AsSpan(0, (int)content.Length).IndexOf(erasedWrapped) < 0, $"{path} still holds the erased subject's data key");
                ClassifiedFieldTests.AssertAbsent(path, content.GetBuffer().AsSpan(0, (int)content.Length), erasedForms);
                found += content.GetBuffer().AsSpan(0, (int)content.Length).IndexOf(keysBefore[keptKeyId]) >= 0 ? 1 : 0;
            }

            Assert.True(found > 0, "the kept subject's key was not found in any file: the scan looked in the wrong place");
        }

        // The subject's next event gets a new key under the same id; the other subject's key is the one it had.
        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(Event(erased, "A new name")))).StatusCode);
        var (_, keysAfter) = await ClassifiedFieldTests.ReadStoredAsync(_server.DataDirectory, _server.StorageArguments);
        Assert.Equal(keysBefore[keptKeyId], keysAfter[keptKeyId]);
        Assert.NotEqual(erasedWrapped, keysAfter[erasedKeyId]);

        // The platform audit log records it (appended from a queue, then projected: waited for).
        using (var platformAdmin = _server.Admin)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!(await platformAdmin.GetStringAsync("/v1/tenants/atp-platform/events?limit=200&action=subject.erased")).Contains(erasedKeyId, StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "no subject.erased record in the platform audit log within 20 s");
                await Task.Delay(100);
            }
        }
    }

    [Fact]
    public async Task A_cell_that_does_not_seal_has_nothing_to_erase_and_says_so()
    {
        await using var plain = await ServerFixture.StartAsync();
        using var admin = plain.ClientWithKey(await plain.CreateTenantWithKeyAsync("acme"));

        await ProblemAssert.IsProblemAsync(
            await admin.PostAsJsonAsync("/v1/tenants/acme/erasures", new { subject = "user-1", reason = "request" }), HttpStatusCode.Conflict, "erasure-unavailable");
        Assert.Equal(0UL, await plain.TreeSizeAsync("acme"));
    }

    /// <summary>
    /// Every earlier checkpoint (<paramref name="firstNote"/>) is consistent with the one of <paramref name="size"/>
    /// leaves; every earlier leaf is unchanged and included in it.
    /// </summary>
    internal static async Task AssertEarlierProofsVerifyAsync(HttpClient reader, string tenant, string firstNote, IReadOnlyList<byte[]> leavesBefore, ulong size)
    {
        var verifierKey = (await reader.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
        var verifier = NoteVerifier.Parse(verifierKey);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(firstNote), [verifier], out var before).IsValid);
        var afterNote = await ServerFixture.WaitForCheckpointAsync(reader, tenant, size);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(afterNote), [verifier], out var after).IsValid);

        // Checked here and, from the same files, with the atp command, as anyone holding the earlier checkpoint would.
        var work = Directory.CreateTempSubdirectory("atp-erasure-verify-").FullName;
        try
        {
            string Write(string name, string text)
            {
                var path = Path.Combine(work, name);
                File.WriteAllText(path, text);
                return path;
            }

            var none = new Dictionary<string, string>();
            var oldFile = Write("old.txt", firstNote);
            var newFile = Write("new.txt", afterNote);
            var consistency = await reader.GetStringAsync($"/v1/tenants/{tenant}/log/proof/consistency?from={before!.Size}&to={after!.Size}");
            Assert.True(ConsistencyProof.Verify(before.Size, after.Size, ProofJson.Hashes(JsonDocument.Parse(consistency).RootElement), before.Root, after.Root).IsValid);
            var consistent = await AuditorTests.AtpAsync(none, "verify", "consistency", "--old", oldFile, "--new", newFile, "--key", verifierKey, "--proof", Write("consistency.json", consistency));
            Assert.True(consistent.ExitCode == 0, consistent.Output + consistent.Error);
            for (var i = 0; i < leavesBefore.Count; i++)
            {
                var leaf = await reader.GetByteArrayAsync($"/v1/tenants/{tenant}/log/entries/{i}");
                Assert.Equal(leavesBefore[i], leaf);
                var proof = await reader.GetStringAsync($"/v1/tenants/{tenant}/log/proof/inclusion?index={i}&size={after.Size}");
                Assert.True(InclusionProof.Verify((ulong)i, after.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(JsonDocument.Parse(proof).RootElement), after.Root).IsValid, $"inclusion of {i}");

                var leafFile = Path.Combine(work, $"leaf-{i}.json");
                await File.WriteAllBytesAsync(leafFile, leavesBefore[i]);
                var included = await AuditorTests.AtpAsync(none, "verify", "inclusion", "--checkpoint", newFile, "--key", verifierKey, "--leaf", leafFile, "--proof", Write($"inclusion-{i}.json", proof));
                Assert.True(included.ExitCode == 0, $"atp verify inclusion of {i}: {included.Output}{included.Error}");
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    internal static string KeyIdOf(byte[] leaf)
    {
        using var parsed = JsonDocument.Parse(leaf);
        Assert.True(FieldToken.TryParse(parsed.RootElement.GetProperty("actor").GetProperty("name").GetString(), out var keyId, out _));
        return keyId;
    }

    internal static string Event(string actorId, string name, string? agent = null) =>
        "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actorId}\",\"name\":{JsonSerializer.Serialize(name)}}},"
        + "\"action\":\"document.update\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-1\"}],\"outcome\":\"success\","
        + $"\"context\":{{\"ip\":\"203.0.113.9\",\"userAgent\":{JsonSerializer.Serialize(agent ?? "probe/1.0")}}}}}";

    // A sealed value of the erased subject that is not ASCII, so its UTF-16 and JSON-escaped forms differ from its UTF-8.
    private static string AgentOf(string marker, int i) => $"Navigateur Zoë «{marker}» {i}";
}
