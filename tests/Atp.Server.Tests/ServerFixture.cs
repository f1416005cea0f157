using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Integrity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// A real ATP server: Kestrel on a free loopback port, a real SQLite file in a temporary data directory, and an
/// HttpClient talking to it over TCP.
/// </summary>
public sealed class ServerFixture : IAsyncDisposable
{
    private readonly string[] _storageArguments;
    private WebApplication? _app;
    private TimeProvider? _clock;

    private ServerFixture(string dataDirectory, string? adminKey, string[] storageArguments)
    {
        DataDirectory = dataDirectory;
        AdminKey = adminKey;
        _storageArguments = storageArguments;
    }

    public string DataDirectory { get; }

    /// <summary>The arguments selecting this server's store (<see cref="TestStorage"/>); empty for SQLite.</summary>
    public IReadOnlyList<string> StorageArguments => _storageArguments;

    public string? AdminKey { get; private set; }

    /// <summary>The cell's region (<c>Atp:Region</c>) for the next start.</summary>
    public string Region { get; set; } = "local";

    public HttpClient Client { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>
    /// Configuration for every start. Rate limits are lifted by default so that tests of other features are not
    /// throttled; the rate-limit tests put the product defaults (or their own) back.
    /// </summary>
    public Dictionary<string, string?> Settings { get; } = new(StringComparer.Ordinal)
    {
        ["Atp:RateLimits:Default:IngestPerSecond"] = "1000000",
        ["Atp:RateLimits:Default:QueryPerSecond"] = "1000000",
        ["Atp:RateLimits:Enterprise:IngestPerSecond"] = "1000000",
        ["Atp:RateLimits:Enterprise:QueryPerSecond"] = "1000000",
        ["Atp:RateLimits:Default:IngestEventsPerSecond"] = "100000000",
        ["Atp:RateLimits:Default:IngestBytesPerSecond"] = "2000000000",
        ["Atp:RateLimits:Default:ReadCostPerSecond"] = "10000000",
        ["Atp:RateLimits:Enterprise:IngestEventsPerSecond"] = "100000000",
        ["Atp:RateLimits:Enterprise:IngestBytesPerSecond"] = "2000000000",
        ["Atp:RateLimits:Enterprise:ReadCostPerSecond"] = "10000000",
        ["Atp:RateLimits:AnonymousPerIpPerSecond"] = "1000000",
        ["Atp:RateLimits:FailuresPerIpPerMinute"] = "1000000",
    };

    /// <summary>The running server's services (for the platform audit log's flush, the clock…).</summary>
    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The server is not running.");

    /// <summary>The tenant's committed tree size, read from the store (what "nothing was stored" is checked against).</summary>
    public async Task<ulong> TreeSizeAsync(string tenant) =>
        (await Services.GetRequiredService<Atp.Core.Storage.ILogStore>().GetTreeHeadAsync(tenant, CancellationToken.None))?.Size
        ?? throw new InvalidOperationException($"no tenant {tenant}");

    public static async Task<ServerFixture> StartAsync(
        string? dataDirectory = null, bool withAdminKey = true, string checkpointInterval = "00:00:00.100", IReadOnlyDictionary<string, string?>? settings = null, TimeProvider? clock = null)
    {
        var fixture = new ServerFixture(
            dataDirectory ?? Directory.CreateTempSubdirectory("atp-server-").FullName,
            withAdminKey ? ApiKeyFormat.Generate() : null,
            await TestStorage.NewStoreArgumentsAsync());
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                fixture.Settings.Remove(key);
            }
            else
            {
                fixture.Settings[key] = value;
            }
        }

        fixture._clock = clock;
        await fixture.StartAppAsync(checkpointInterval);
        return fixture;
    }

    public HttpClient ClientWithKey(string? key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    public HttpClient Admin => ClientWithKey(AdminKey ?? File.ReadAllText(Path.Combine(DataDirectory, "bootstrap-admin.key")).Trim());

    /// <summary>Creates a tenant and returns a key with the given scopes for it.</summary>
    public async Task<string> CreateTenantWithKeyAsync(string tenant, params string[] scopes)
    {
        using var admin = Admin;
        var created = await admin.PostAsJsonAsync("/v1/tenants", new { id = tenant, name = $"Tenant {tenant}" });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        return await CreateKeyAsync(tenant, scopes.Length == 0 ? [Scopes.EventsWrite, Scopes.EventsRead, Scopes.TenantAdmin] : scopes);
    }

    public async Task<string> CreateKeyAsync(string tenant, params string[] scopes)
    {
        using var admin = Admin;
        var response = await admin.PostAsJsonAsync($"/v1/tenants/{tenant}/api-keys", new { name = "test", scopes });
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("key").GetString()!;
    }

    /// <summary>Waits until the sealer has signed a checkpoint of at least <paramref name="size"/> leaves.</summary>
    public static async Task<string> WaitForCheckpointAsync(HttpClient client, string tenant, ulong size)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var response = await client.GetAsync($"/v1/tenants/{tenant}/log/checkpoint");
            if (response.IsSuccessStatusCode)
            {
                var note = await response.Content.ReadAsStringAsync();
                Assert.True(SignedNote.TryParse(note, out var signed, out var error), error);
                Assert.True(Checkpoint.TryParse(signed.Text, out var checkpoint, out error), error);
                if (checkpoint.Size >= size)
                {
                    return note;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"no checkpoint of size {size} within 20 s");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until search sees the tenant's whole log (the projector runs behind the appends).</summary>
    public static async Task WaitForProjectionAsync(HttpClient client, string tenant)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var status = await client.GetFromJsonAsync<System.Text.Json.JsonElement>($"/v1/tenants/{tenant}/projection");
            if (status.GetProperty("projectedSize").GetUInt64() == status.GetProperty("treeSize").GetUInt64())
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the projection of {tenant} did not catch up within 20 s");
            await Task.Delay(20);
        }
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string Event(string action = "document.update", string? id = null, string actor = "user-1") =>
        "{" + (id is null ? "" : "\"id\":\"" + id + "\",")
        + "\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\",\"actor\":{\"type\":\"user\",\"id\":\"" + actor + "\"},"
        + "\"action\":\"" + action + "\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-1\",\"name\":\"Q3.pdf\"}],"
        + "\"outcome\":\"success\",\"context\":{\"ip\":\"203.0.113.7\"},\"data\":{\"n\":1}}";

    public static string Batch(int count, Func<int, string>? make = null) =>
        "{\"events\":[" + string.Join(',', Enumerable.Range(0, count).Select(i => make?.Invoke(i) ?? Event(actor: $"user-{i}"))) + "]}";

    public async Task RestartAsync()
    {
        await StopAppAsync();
        await StartAppAsync("00:00:00.100");
    }

    /// <summary>Stops the server (its files stay, for a test to inspect).</summary>
    public Task StopAsync() => StopAppAsync();

    public async ValueTask DisposeAsync()
    {
        await StopAppAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A test may still hold a file open for a moment; the temp directory is reclaimed by the OS.
        }
    }

    private async Task StartAppAsync(string checkpointInterval)
    {
        var args = new List<string>
        {
            "--urls", "http://127.0.0.1:0",
            $"--Atp:DataDirectory={DataDirectory}",
            $"--Atp:Integrity:CheckpointInterval={checkpointInterval}",
            "--Atp:Origin=atp.test/test-cell-1",
            $"--Atp:Region={Region}",
            "--Logging:LogLevel:Default=Warning",
        };
        args.AddRange(_storageArguments);
        if (AdminKey is not null)
        {
            args.Add($"--Atp:Bootstrap:AdminKey={AdminKey}");
        }

        args.AddRange(Settings.Select(setting => $"--{setting.Key}={setting.Value}"));

        var clock = _clock;
        _app = AtpServer.Build([.. args], builder =>
        {
            if (clock is not null)
            {
                builder.Services.AddSingleton(clock);
            }
        });
        await AtpServer.InitializeAsync(_app, CancellationToken.None);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
        Client = new HttpClient { BaseAddress = BaseAddress };
    }

    private async Task StopAppAsync()
    {
        Client?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }
}
