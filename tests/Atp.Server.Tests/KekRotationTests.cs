using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Gateway;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// KEK rotation over real Kestrel, on the engine TestStorage selects (SQLite, or PostgreSQL with ATP_TEST_STORAGE=postgres):
/// signed requests keep verifying before, during and after the re-wrap, and after the old KEK is retired and the server restarts.
/// </summary>
public sealed class KekRotationTests : IAsyncLifetime
{
    private ServerFixture _server = null!;
    private SigningKey _key = null!;
    private SigningKey _legacy = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerFixture.StartAsync();
        using var admin = _server.Admin;
        _key = await SigningKeys.CreateEnterpriseTenantAsync(admin, "bank", Scopes.EventsWrite, Scopes.EventsRead);
        _legacy = await SigningKeys.CreateAsync(admin, "bank", Scopes.EventsWrite);

        // A secret sealed before KEK ids existed (blob version 1), as a store from an earlier release holds it.
        var store = _server.Services.GetRequiredService<ITenantStore>();
        var stored = (await store.FindApiKeyByIdAsync(_legacy.Id, CancellationToken.None))!.SealedSigningSecret!;
        Assert.True(await store.ReplaceSealedSigningSecretAsync("bank", _legacy.Id, stored, SealVersion1(_legacy.Secret, _legacy.Id), CancellationToken.None));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Signed_requests_verify_before_during_and_after_a_rotation_and_after_the_old_kek_is_retired()
    {
        using var admin = _server.Admin;
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_key));
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_legacy));

        var before = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/kek");
        Assert.Equal("00000000", before.GetProperty("currentKekId").GetString());
        Assert.Equal(1, before.GetProperty("legacyFormatSecrets").GetInt32());
        Assert.Equal(2, SealedUnder(before, "00000000"));

        // Signed traffic from both keys throughout the rotation and re-wrap.
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            var statuses = new List<HttpStatusCode>();
            while (!stop.IsCancellationRequested || statuses.Count < 20)
            {
                statuses.Add(await PostSignedAsync(statuses.Count % 2 == 0 ? _key : _legacy));
            }

            return statuses;
        });
        await Task.Delay(100);
        var rotated = await admin.PostAsync("/v1/admin/kek/rotate", null);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var result = await rotated.Content.ReadFromJsonAsync<JsonElement>();
        await Task.Delay(100);
        await stop.CancelAsync();
        var during = await traffic;
        Assert.All(during, status => Assert.Equal(HttpStatusCode.Created, status));

        var current = result.GetProperty("currentKekId").GetString()!;
        Assert.NotEqual("00000000", current);
        Assert.Equal(2, result.GetProperty("rewrapped").GetInt32());
        Assert.Equal(2, SealedUnder(result, current));
        Assert.Equal(0, SealedUnder(result, "00000000"));

        // The current KEK cannot be retired; the old one, now sealing nothing, can.
        await ProblemAssert.IsProblemAsync(await admin.DeleteAsync($"/v1/admin/kek/{current}"), HttpStatusCode.Conflict, "kek-current");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/v1/admin/kek/00000000")).StatusCode);
        Assert.False(File.Exists(Path.Combine(_server.DataDirectory, "keys", "cell-kek.key")));
        await ProblemAssert.IsProblemAsync(await admin.DeleteAsync("/v1/admin/kek/00000000"), HttpStatusCode.NotFound, "not-found");

        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_key));
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_legacy));

        // After a restart the server loads the new KEK alone, and new signing keys are sealed under it.
        await _server.RestartAsync();
        using var restartedAdmin = _server.Admin;
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_key));
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_legacy));
        var created = await SigningKeys.CreateAsync(restartedAdmin, "bank", Scopes.EventsWrite);
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(created));
        var after = await restartedAdmin.GetFromJsonAsync<JsonElement>("/v1/admin/kek");
        Assert.Equal(current, after.GetProperty("currentKekId").GetString());
        Assert.Equal(3, SealedUnder(after, current));
        Assert.Equal(0, after.GetProperty("legacyFormatSecrets").GetInt32());
        Assert.Single(after.GetProperty("keks").EnumerateArray());
    }

    [Fact]
    public async Task A_kek_that_still_seals_a_stored_secret_is_not_retired_until_a_rewrap_moves_it()
    {
        using var admin = _server.Admin;
        var store = _server.Services.GetRequiredService<ITenantStore>();
        var underFirst = (await store.FindApiKeyByIdAsync(_key.Id, CancellationToken.None))!.SealedSigningSecret!;
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/v1/admin/kek/rotate", null)).StatusCode);

        // A node that had not seen the rotation yet seals under the old KEK.
        var rewrapped = (await store.FindApiKeyByIdAsync(_key.Id, CancellationToken.None))!.SealedSigningSecret!;
        Assert.True(await store.ReplaceSealedSigningSecretAsync("bank", _key.Id, rewrapped, underFirst, CancellationToken.None));

        await ProblemAssert.IsProblemAsync(await admin.DeleteAsync("/v1/admin/kek/00000000"), HttpStatusCode.Conflict, "kek-in-use");
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_key));

        var rewrap = await (await admin.PostAsync("/v1/admin/kek/rewrap", null)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(1, rewrap.GetProperty("rewrapped").GetInt32());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/v1/admin/kek/00000000")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, await PostSignedAsync(_key));

        // The platform audit log records each step.
        await ServerFixture.WaitForProjectionAsync(admin, "atp-platform");
        var log = await admin.GetStringAsync("/v1/tenants/atp-platform/events?limit=200");
        Assert.Contains("kek.rotated", log, StringComparison.Ordinal);
        Assert.Contains("kek.rewrapped", log, StringComparison.Ordinal);
        Assert.Contains("kek.retired", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_platform_admins_manage_keks()
    {
        using var tenantAdmin = _server.ClientWithKey(await _server.CreateKeyAsync("bank", Scopes.TenantAdmin));

        await ProblemAssert.IsProblemAsync(await tenantAdmin.PostAsync("/v1/admin/kek/rotate", null), HttpStatusCode.Forbidden, "forbidden");
        using var admin = _server.Admin;
        Assert.Equal("00000000", (await admin.GetFromJsonAsync<JsonElement>("/v1/admin/kek")).GetProperty("currentKekId").GetString());
    }

    private async Task<HttpStatusCode> PostSignedAsync(SigningKey key)
    {
        using var client = new HttpClient(new SigningHandler(key)) { BaseAddress = _server.BaseAddress };
        return (await client.PostAsync("/v1/tenants/bank/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode;
    }

    private static int SealedUnder(JsonElement status, string kekId) =>
        status.GetProperty("keks").EnumerateArray().SingleOrDefault(k => k.GetProperty("id").GetString() == kekId) is { ValueKind: JsonValueKind.Object } kek
            ? kek.GetProperty("sealedSecrets").GetInt32()
            : 0;

    // Version 1 as FileSecretSealer wrote it before KEK rotation: 0x01 ‖ nonce ‖ tag ‖ AES-256-GCM(secret), key id as associated data.
    private byte[] SealVersion1(byte[] secret, string keyId)
    {
        var kek = Convert.FromBase64String(File.ReadAllText(Path.Combine(_server.DataDirectory, "keys", "cell-kek.key")).Trim());
        using var aes = new AesGcm(kek, 16);
        var blob = new byte[1 + 12 + 16 + secret.Length];
        blob[0] = 1;
        RandomNumberGenerator.Fill(blob.AsSpan(1, 12));
        aes.Encrypt(blob.AsSpan(1, 12), secret, blob.AsSpan(29), blob.AsSpan(13, 16), Encoding.UTF8.GetBytes(keyId));
        return blob;
    }
}
