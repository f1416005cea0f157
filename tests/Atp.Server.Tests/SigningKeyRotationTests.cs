using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atp.Integrity;
using Atp.Server.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// Issue 20 §4: the cell signing key rotates with an overlap over real Kestrel and the configured store (SQLite, or
/// PostgreSQL with ATP_TEST_STORAGE=postgres): during the overlap checkpoints carry both signatures, after retirement only
/// the new key's, and every checkpoint signed before still verifies, also after a restart and with the atp CLI.
/// </summary>
public sealed partial class SigningKeyRotationTests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private HttpClient _acme = null!;
    private HttpClient _admin = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Telemetry:Prometheus"] = "true" });
        _acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        _admin = _server.Admin;
    }

    public async Task DisposeAsync()
    {
        _acme.Dispose();
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task During_the_overlap_checkpoints_carry_both_signatures_and_after_retirement_only_the_new_one()
    {
        await PostAsync(3);
        var beforeRotation = await ServerFixture.WaitForCheckpointAsync(_acme, "acme", 3);
        var old = Single(await KeysAsync(), "active");

        await ProblemAssert.IsProblemAsync(await _acme.PostAsync("/v1/log/keys/rotations", null), HttpStatusCode.Forbidden, "forbidden");
        var rotated = await _admin.PostAsync("/v1/log/keys/rotations", null);
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        var keys = (await rotated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("keys");
        Assert.Equal(2, keys.GetArrayLength());
        Assert.Equal(old.VerifierKey, Single(keys, "retiring").VerifierKey);
        var next = Single(keys, "next");
        Assert.NotEqual(old.KeyId, next.KeyId);
        Assert.Equal(old.Name, next.Name);
        Assert.True(keys.EnumerateArray().First(k => k.GetProperty("status").GetString() == "next").TryGetProperty("notBefore", out _));
        Assert.Equal(next.VerifierKey, Single(await KeysAsync(), "next").VerifierKey);
        await ProblemAssert.IsProblemAsync(await _admin.PostAsync("/v1/log/keys/rotations", null), HttpStatusCode.Conflict, "rotation-in-progress");

        await PostAsync(2);
        var overlap = await ServerFixture.WaitForCheckpointAsync(_acme, "acme", 5);
        Assert.True(SignedNote.TryParse(overlap, out var overlapNote, out _));
        Assert.Equal([old.KeyId, next.KeyId], overlapNote.Signatures.Select(s => s.KeyId).ToArray());
        AssertVerifies(overlap, old.Verifier);
        AssertVerifies(overlap, next.Verifier);

        await ProblemAssert.IsProblemAsync(await _admin.PostAsync($"/v1/log/keys/{next.KeyIdHex}/retire", null), HttpStatusCode.Conflict, "key-not-retiring");
        await ProblemAssert.IsProblemAsync(await _admin.PostAsync("/v1/log/keys/00000000/retire", null), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await _admin.PostAsync("/v1/log/keys/XYZ/retire", null), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await _acme.PostAsync($"/v1/log/keys/{old.KeyIdHex}/retire", null), HttpStatusCode.Forbidden, "forbidden");
        var retired = await _admin.PostAsync($"/v1/log/keys/{old.KeyIdHex}/retire", null);
        Assert.Equal(HttpStatusCode.OK, retired.StatusCode);
        keys = (await retired.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("keys");
        Assert.Equal(old.VerifierKey, Single(keys, "retired").VerifierKey);
        Assert.True(keys.EnumerateArray().First(k => k.GetProperty("status").GetString() == "retired").TryGetProperty("retiredAt", out _));
        Assert.Equal(next.VerifierKey, Single(keys, "active").VerifierKey);

        await PostAsync(2);
        var afterRetirement = await ServerFixture.WaitForCheckpointAsync(_acme, "acme", 7);
        Assert.True(SignedNote.TryParse(afterRetirement, out var afterNote, out _));
        Assert.Equal([next.KeyId], afterNote.Signatures.Select(s => s.KeyId).ToArray());
        AssertVerifies(afterRetirement, next.Verifier);
        Assert.False(Checkpoint.Open(Encoding.UTF8.GetBytes(afterRetirement), [old.Verifier], out _).IsValid);

        // The old-key checkpoint and the new-key checkpoint are consistent, each verified with its own key.
        var first = Open(beforeRotation, old.Verifier);
        var last = Open(afterRetirement, next.Verifier);
        var proof = await _acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/consistency?from={first.Size}&to={last.Size}");
        Assert.True(ConsistencyProof.Verify(first.Size, last.Size, ProofJson.Hashes(proof), first.Root, last.Root).IsValid);
        var inclusion = await _acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/log/proof/inclusion?index=1&size=3");
        var leaf = await _acme.GetByteArrayAsync("/v1/tenants/acme/log/entries/1");
        Assert.True(InclusionProof.Verify(1, 3, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(inclusion), first.Root).IsValid);

        // The per-tenant keys endpoint shows the same keyring; the platform log recorded both steps.
        var tenantKeys = (await _acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/log/keys")).GetProperty("keys");
        Assert.Equal(next.VerifierKey, Single(tenantKeys, "active").VerifierKey);
        Assert.Equal(old.VerifierKey, Single(tenantKeys, "retired").VerifierKey);
        var actions = await PlatformActionsAsync();
        Assert.Contains($"signing-key.rotation-started:{next.KeyIdHex}", actions);
        Assert.Contains($"signing-key.retired:{old.KeyIdHex}:operator", actions);

        // Every signature is counted by its (public) key id: both keys signed the overlap checkpoint.
        var metrics = await _server.ClientWithKey(null).GetStringAsync("/metrics");
        Assert.Matches(SignatureSeries(old.KeyIdHex), metrics);
        Assert.Matches(SignatureSeries(next.KeyIdHex), metrics);

        // atp verify: the overlap checkpoint with either key alone; the new-key checkpoint not with the retired key
        // alone, but with both trusted; the consistency between an old-key and a new-key checkpoint.
        var directory = Directory.CreateTempSubdirectory("atp-keyrot-cli-").FullName;
        try
        {
            var overlapFile = Write(directory, "overlap.txt", overlap);
            var beforeFile = Write(directory, "before.txt", beforeRotation);
            var afterFile = Write(directory, "after.txt", afterRetirement);
            var proofFile = Write(directory, "proof.json", proof.GetRawText());
            await OfflineCellTests.AssertAtpAsync(0, "verified: checkpoint of atp.test/test-cell-1/acme at tree size 5", "verify", "checkpoint", overlapFile, "--key", old.VerifierKey);
            await OfflineCellTests.AssertAtpAsync(0, "verified: checkpoint of atp.test/test-cell-1/acme at tree size 5", "verify", "checkpoint", overlapFile, "--key", next.VerifierKey);
            await OfflineCellTests.AssertAtpAsync(1, "FAILED", "verify", "checkpoint", afterFile, "--key", old.VerifierKey);
            await OfflineCellTests.AssertAtpAsync(0, "verified", "verify", "checkpoint", afterFile, "--key", old.VerifierKey, "--key", next.VerifierKey);
            await OfflineCellTests.AssertAtpAsync(
                0, "verified", "verify", "consistency", "--old", beforeFile, "--new", afterFile, "--proof", proofFile, "--key", old.VerifierKey, "--key", next.VerifierKey);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_rotation_survives_a_restart_and_a_log_last_signed_by_a_retired_key_keeps_growing()
    {
        await PostAsync(2);
        var oldOnly = await ServerFixture.WaitForCheckpointAsync(_acme, "acme", 2);
        var old = Single(await KeysAsync(), "active");
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsJsonAsync("/v1/log/keys/rotations", new { overlapSeconds = 3600 })).StatusCode);
        var next = Single(await KeysAsync(), "next");
        var keysDirectory = Path.Combine(_server.DataDirectory, "keys");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(keysDirectory, $"cell-signing-{next.KeyIdHex}.key")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(keysDirectory, "cell-signing.keyring.json")));
        }

        Assert.DoesNotContain("PRIVATE", await File.ReadAllTextAsync(Path.Combine(keysDirectory, "cell-signing.keyring.json")), StringComparison.Ordinal);

        var during = (await KeysAsync()).EnumerateArray().First(k => k.GetProperty("status").GetString() == "retiring");
        Assert.True(during.TryGetProperty("notAfter", out var notAfter));
        await _server.RestartAsync();
        using (var admin = _server.Admin)
        {
            var restarted = await KeysAsync();
            Assert.Equal(old.VerifierKey, Single(restarted, "retiring").VerifierKey);
            Assert.Equal(next.VerifierKey, Single(restarted, "next").VerifierKey);
            Assert.Equal(notAfter.GetDateTimeOffset(), restarted.EnumerateArray().First(k => k.GetProperty("status").GetString() == "retiring").GetProperty("notAfter").GetDateTimeOffset());

            // Retired before the log grew again: its latest checkpoint carries the retired key's signature only. The
            // sealer's fork check must still accept it (retired keys stay in the keyring), or the log would be quarantined.
            Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/v1/log/keys/{old.KeyIdHex}/retire", null)).StatusCode);
        }

        await _server.RestartAsync();
        var afterRestart = await KeysAsync();
        Assert.Equal(old.VerifierKey, Single(afterRestart, "retired").VerifierKey);
        Assert.Equal(next.VerifierKey, Single(afterRestart, "active").VerifierKey);

        using var acme = _server.ClientWithKey(_acme.DefaultRequestHeaders.Authorization!.Parameter);
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        var grown = await ServerFixture.WaitForCheckpointAsync(acme, "acme", 5);
        Assert.True(SignedNote.TryParse(grown, out var grownNote, out _));
        Assert.Equal([next.KeyId], grownNote.Signatures.Select(s => s.KeyId).ToArray());
        var first = Open(oldOnly, old.Verifier);
        var last = Open(grown, next.Verifier);
        var proof = await acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/log/proof/consistency?from=2&to=5");
        Assert.True(ConsistencyProof.Verify(first.Size, last.Size, ProofJson.Hashes(proof), first.Root, last.Root).IsValid);
    }

    [Fact]
    public async Task The_old_key_retires_by_itself_once_the_configured_overlap_has_passed()
    {
        var clock = new Atp.Storage.Contract.ManualClock(DateTimeOffset.UtcNow);
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Keys:RotationOverlap"] = "01:00:00" }, clock: clock);
        using var admin = server.Admin;
        using var acme = server.ClientWithKey(await server.CreateTenantWithKeyAsync("acme"));
        var start = clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/v1/log/keys/rotations", null)).StatusCode);
        var keys = (await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys");
        var old = Single(keys, "retiring");
        var next = Single(keys, "next");
        Assert.Equal(start.AddHours(1), keys.EnumerateArray().First(k => k.GetProperty("status").GetString() == "retiring").GetProperty("notAfter").GetDateTimeOffset());

        clock.Advance(TimeSpan.FromMinutes(61));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Single((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys"), null, old.KeyId).Status != "retired")
        {
            Assert.True(DateTime.UtcNow < deadline, "the retiring key did not retire after its overlap");
            await Task.Delay(50);
        }

        Assert.Equal(next.VerifierKey, Single((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys"), "active").VerifierKey);
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
        var note = await ServerFixture.WaitForCheckpointAsync(acme, "acme", 1);
        Assert.True(SignedNote.TryParse(note, out var signed, out _));
        Assert.Equal([next.KeyId], signed.Signatures.Select(s => s.KeyId).ToArray());

        // Read from the platform log itself (the exact leaves): its search projection waits on timers of the manual clock.
        await server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        var leaves = new List<JsonElement>();
        for (var i = 0UL; i < await server.TreeSizeAsync(PlatformAuditLog.TenantId); i++)
        {
            leaves.Add(JsonDocument.Parse(await admin.GetByteArrayAsync($"/v1/tenants/{PlatformAuditLog.TenantId}/log/entries/{i}")).RootElement);
        }

        var retiredEvent = leaves.Single(e => e.GetProperty("action").GetString() == "signing-key.retired");
        Assert.Equal("system", retiredEvent.GetProperty("actor").GetProperty("type").GetString());
        Assert.Equal("overlap-ended", retiredEvent.GetProperty("data").GetProperty("reason").GetString());
        Assert.Equal(old.KeyIdHex, retiredEvent.GetProperty("data").GetProperty("keyId").GetString());
    }

    [Fact]
    public async Task A_rotation_request_with_an_overlap_out_of_range_is_a_validation_problem()
    {
        foreach (var overlap in new[] { 0L, -5L, 40_000_000L })
        {
            await ProblemAssert.IsProblemAsync(await _admin.PostAsJsonAsync("/v1/log/keys/rotations", new { overlapSeconds = overlap }), HttpStatusCode.BadRequest, "validation");
        }

        Assert.Equal("active", Single(await KeysAsync(), "active").Status);
        Assert.Equal(1, (await KeysAsync()).GetArrayLength());
    }

    private sealed record PublishedKey(string Name, string VerifierKey, string Status, uint KeyId)
    {
        public NoteVerifier Verifier => NoteVerifier.Parse(VerifierKey);

        public string KeyIdHex => KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<JsonElement> KeysAsync()
    {
        using var anonymous = _server.ClientWithKey(null);
        return (await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys");
    }

    private static PublishedKey Single(JsonElement keys, string? status, uint? keyId = null)
    {
        var match = keys.EnumerateArray().Single(k => status is null ? NoteVerifier.Parse(k.GetProperty("verifierKey").GetString()!).KeyId == keyId : k.GetProperty("status").GetString() == status);
        var verifier = NoteVerifier.Parse(match.GetProperty("verifierKey").GetString()!);
        Assert.Equal(verifier.KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture), match.GetProperty("keyId").GetString());
        return new PublishedKey(match.GetProperty("name").GetString()!, verifier.VerifierKey, match.GetProperty("status").GetString()!, verifier.KeyId);
    }

    private static void AssertVerifies(string note, NoteVerifier key)
    {
        var result = Checkpoint.Open(Encoding.UTF8.GetBytes(note), [key], out _);
        Assert.True(result.IsValid, result.Failure);
    }

    private static Checkpoint Open(string note, NoteVerifier key)
    {
        var result = Checkpoint.Open(Encoding.UTF8.GetBytes(note), [key], out var checkpoint);
        Assert.True(result.IsValid, result.Failure);
        return checkpoint!;
    }

    private async Task PostAsync(int count) =>
        Assert.Equal(HttpStatusCode.Created, (await _acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(count)))).StatusCode);

    private async Task<List<string>> PlatformActionsAsync()
    {
        await _server.Services.GetRequiredService<PlatformAuditLog>().FlushAsync(CancellationToken.None);
        await ServerFixture.WaitForProjectionAsync(_admin, PlatformAuditLog.TenantId);
        var page = await _admin.GetFromJsonAsync<JsonElement>("/v1/tenants/atp-platform/events?order=asc&limit=1000");
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event"))
            .Where(e => e.GetProperty("action").GetString()!.StartsWith("signing-key.", StringComparison.Ordinal)).Select(e =>
        {
            var data = e.GetProperty("data");
            var text = $"{e.GetProperty("action").GetString()}:{data.GetProperty("keyId").GetString()}";
            return data.TryGetProperty("reason", out var reason) ? $"{text}:{reason.GetString()}" : text;
        })];
    }

    private static string Write(string directory, string name, string text)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Regex SignatureSeries(string keyId) => new($@"atp_signing_signatures_total\{{[^}}]*atp_key_id=""{keyId}""[^}}]*\}} [1-9]");
}
