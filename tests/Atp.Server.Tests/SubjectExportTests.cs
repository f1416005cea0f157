using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// <c>atp subjects export</c> as a separate process against a real server (the CLI's network commands are tested here,
/// beside the server they talk to): every page fetched and verified offline against one checkpoint, the file written
/// only when all of it verified, and verifiable again by <c>atp verify events</c>.
/// </summary>
public sealed class SubjectExportTests : IAsyncLifetime
{
    private readonly string _marker = Guid.NewGuid().ToString("N")[..10];
    private ServerFixture _server = null!;
    private string _admin = null!;
    private string _work = null!;

    public async Task InitializeAsync()
    {
        _work = Directory.CreateTempSubdirectory("atp-subject-export-").FullName;
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Classification:SealEnvelopeFields"] = "true" });
        _admin = await _server.CreateTenantWithKeyAsync("acme");
        using var admin = _server.ClientWithKey(_admin);

        // Subject s-1 as actor (even), as a target (every third), both, and other subjects' events around them.
        var events = Enumerable.Range(0, 12).Select(i =>
            "{\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
            + $"\"actor\":{{\"type\":\"user\",\"id\":\"{(i % 2 == 0 ? "s-1" : "u-2")}\",\"name\":\"Zoë {_marker} {i}\"}},"
            + $"\"action\":\"document.update\",\"targets\":[{{\"type\":\"user\",\"id\":\"{(i % 3 == 0 ? "s-1" : "d-1")}\"}}],"
            + "\"outcome\":\"success\",\"context\":{\"ip\":\"203.0.113.9\"}}");
        var response = await admin.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + string.Join(',', events) + "]}"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        await ServerFixture.WaitForCheckpointAsync(admin, "acme", 12);
        await ServerFixture.WaitForProjectionAsync(admin, "acme");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task Exports_every_page_verified_against_one_checkpoint_and_atp_verify_events_verifies_the_file_again()
    {
        var key = await VerifierKeyAsync();
        var file = Path.Combine(_work, "s-1.json");
        var piiReader = await _server.CreateKeyAsync("acme", Scopes.EventsRead, Scopes.PiiRead);

        var export = await ExportAsync(piiReader, file, "--key", key, "--limit", "3");

        Assert.True(export.ExitCode == 0, export.Error);
        Assert.StartsWith("exported: 8 events about the subject, each verified against checkpoint ", export.Output, StringComparison.Ordinal);
        Assert.Contains("classified fields are in clear", export.Output, StringComparison.Ordinal);
        Assert.Contains("verified 3 events so far (after page 1)", export.Error, StringComparison.Ordinal);
        using (var exported = JsonDocument.Parse(await File.ReadAllBytesAsync(file)))
        {
            var root = exported.RootElement;
            Assert.Equal("s-1", root.GetProperty("subject").GetString());
            Assert.Equal(12UL, root.GetProperty("snapshot").GetUInt64());
            Assert.Equal(new ulong[] { 0, 2, 3, 4, 6, 8, 9, 10 }, root.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetUInt64()));
            Assert.Equal($"Zoë {_marker} 0", root.GetProperty("items")[0].GetProperty("event").GetProperty("actor").GetProperty("name").GetString());
        }

        var again = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "verify", "events", file, "--key", key);
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.StartsWith("verified: 8 events against checkpoint ", again.Output, StringComparison.Ordinal);

        // Another cell's key: the checkpoint does not verify, so nothing is written.
        using var other = Atp.Integrity.NoteSigner.Generate("other.example/cell");
        var untrusted = await ExportAsync(piiReader, Path.Combine(_work, "untrusted.json"), "--key", other.Verifier.VerifierKey);
        Assert.Equal(1, untrusted.ExitCode);
        Assert.StartsWith("FAILED:", untrusted.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_work, "untrusted.json")));
        Assert.Empty(Directory.GetFiles(_work, "*.partial"));

        // Refused by the server (no events:read): unusable input, exit 2, no file.
        var writer = await _server.CreateKeyAsync("acme", Scopes.EventsWrite);
        var refused = await ExportAsync(writer, Path.Combine(_work, "refused.json"), "--key", key);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("403", refused.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_work, "refused.json")));
    }

    [Fact]
    public async Task An_event_whose_stored_bytes_were_altered_fails_the_export_and_leaves_no_file()
    {
        var key = await VerifierKeyAsync();
        using var admin = _server.ClientWithKey(_admin);
        var leaf = await admin.GetByteArrayAsync("/v1/tenants/acme/log/entries/4");
        await new StoreTamper(_server.DataDirectory, _server.StorageArguments).FlipAsync("leaf", "acme", 4, StoreTamper.OffsetOf(leaf, "document.update"), 0x20);
        var file = Path.Combine(_work, "tampered.json");

        var export = await ExportAsync(await _server.CreateKeyAsync("acme", Scopes.EventsRead), file, "--key", key, "--limit", "2");

        Assert.Equal(1, export.ExitCode);
        Assert.Contains("(event at index 4) is quarantined by the server", export.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(file));
        Assert.Empty(Directory.GetFiles(_work, "*.partial"));
    }

    private Task<(int ExitCode, string Output, string Error)> ExportAsync(string apiKey, string file, params string[] more) =>
        AuditorTests.AtpAsync(
            new Dictionary<string, string> { ["ATP_API_KEY"] = apiKey },
            ["subjects", "export", "s-1", "--url", _server.BaseAddress.ToString(), "--tenant", "acme", "--out", file, .. more]);

    private async Task<string> VerifierKeyAsync()
    {
        using var anonymous = _server.ClientWithKey(null);
        return (await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
    }
}
