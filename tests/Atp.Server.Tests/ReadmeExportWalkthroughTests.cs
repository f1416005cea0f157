using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// The README's "Export and verify offline" walkthrough, run as written (with bash and curl) against a real server:
/// its commands must work, the bundle they download must verify, and the offline cell it imports into must serve the
/// source's checkpoint.
/// </summary>
public sealed class ReadmeExportWalkthroughTests : IAsyncLifetime
{
    private const string Marker = "<!-- walkthrough:export";
    private readonly string _work = Path.Combine(Path.GetTempPath(), "atp-readme-export-" + Guid.NewGuid().ToString("N"));
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_work);
        _server = await ServerFixture.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task The_readme_export_walkthrough_runs_as_written_and_its_bundle_imports_into_an_offline_cell()
    {
        // What the walkthrough before it left behind: tenant acme with two events under a signed checkpoint.
        using var acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(2)))).StatusCode);
        var checkpoint = await ServerFixture.WaitForCheckpointAsync(acme, "acme", 2);
        var verifierKey = (await acme.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;

        var script = ReadmeBlock().Replace("dotnet run --project src/Atp.Cli --", "dotnet \"$ATP_CLI\"", StringComparison.Ordinal);
        var start = new ProcessStartInfo("bash") { WorkingDirectory = _work, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add("-euo");
        start.ArgumentList.Add("pipefail");
        start.ArgumentList.Add("-s");
        start.Environment["ATP"] = _server.BaseAddress.ToString().TrimEnd('/');
        start.Environment["ADMIN"] = _server.AdminKey!;
        start.Environment["VKEY"] = verifierKey;
        start.Environment["ATP_CLI"] = OfflineCellTests.AtpBinary();
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("bash is needed to run the README walkthrough (apt-get install -y bash curl)", e);
        }

        using (process)
        {
            await process.StandardInput.WriteAsync(script);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(180));
            var text = await output + await error;
            Assert.True(process.ExitCode == 0, $"the walkthrough failed (exit {process.ExitCode}; it needs curl: apt-get install -y curl):\n{text}");
            Assert.Contains("verified: bundle of tenant acme", text, StringComparison.Ordinal);
            Assert.Contains("imported 2 entries", text, StringComparison.Ordinal);
        }

        // What the README says next: a later bundle from index 2 verifies against the first (--previous) and imports on top.
        Assert.Equal(HttpStatusCode.Created, (await acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(3)))).StatusCode);
        var later = await ServerFixture.WaitForCheckpointAsync(acme, "acme", 5);
        using var auditor = _server.ClientWithKey(await _server.CreateKeyAsync("acme", "events:read", "exports:create"));
        var job = (await ExportTests.CreateAsync(auditor, "acme", new { format = "ndjson", fromIndex = 2 })).GetProperty("id").GetString()!;
        await ExportTests.WaitForStateAsync(auditor, "acme", job, "succeeded");
        var laterBundle = Path.Combine(_work, "later.tar");
        await File.WriteAllBytesAsync(laterBundle, await ExportTests.DownloadAsync(auditor, "acme", job));
        await OfflineCellTests.AssertAtpAsync(0, "previous: consistent with the checkpoint of size 2", "verify", "bundle", laterBundle, "--key", verifierKey, "--previous", Path.Combine(_work, "acme.tar"));
        await OfflineCellTests.AssertAtpAsync(0, "imported 3 entries", "import", laterBundle, "--data", Path.Combine(_work, "offline-data"), "--key", verifierKey);

        // The offline cell is an embedded (SQLite) cell, whatever engine the source ran on: `atp import` writes SQLite.
        var offlineAdmin = ApiKeyFormat.Generate();
        await using var offline = await ChildServer.StartAsync(Path.Combine(_work, "offline-data"), offlineAdmin);
        using var admin = CrashTests.Client(offline.BaseAddress, offlineAdmin);
        using var reader = CrashTests.Client(offline.BaseAddress, await OfflineCellTests.CreateKeyAsync(admin));
        Assert.NotEqual(checkpoint, later);
        Assert.Equal(later, await reader.GetStringAsync("/v1/tenants/acme/log/checkpoint"));
        var ingest = await reader.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Event()));
        Assert.Equal(HttpStatusCode.Conflict, ingest.StatusCode);
        await offline.StopAsync();
    }

    private static string ReadmeBlock()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "README.md")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        var readme = File.ReadAllText(Path.Combine(directory.FullName, "README.md"));
        var marker = readme.IndexOf(Marker, StringComparison.Ordinal);
        Assert.True(marker >= 0, "README.md has no export walkthrough block");
        var open = readme.IndexOf("```sh\n", marker, StringComparison.Ordinal) + "```sh\n".Length;
        var close = readme.IndexOf("\n```", open, StringComparison.Ordinal);
        return readme[open..close] + "\n";
    }
}
