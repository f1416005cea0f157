using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.LoadTest;

/// <summary>
/// The server hosted in the load test's own process, for the runs that reach into its stores (to build tenants or logs
/// faster than the API would): on a free loopback port, warnings only.
/// </summary>
internal static class InProcessServer
{
    /// <summary>The arguments of a server on <paramref name="dataDirectory"/> with the bootstrap <paramref name="adminKey"/>, then <paramref name="more"/>.</summary>
    public static string[] Arguments(string dataDirectory, string adminKey, params string[] more) =>
        [
            "--urls", "http://127.0.0.1:0",
            $"--Atp:DataDirectory={dataDirectory}",
            $"--Atp:Bootstrap:AdminKey={adminKey}",
            "--Logging:LogLevel:Default=Warning",
            .. more,
        ];

    public static async Task<WebApplication> StartAsync(string[] arguments, CancellationToken cancellationToken)
    {
        var app = AtpServer.Build(arguments);
        await AtpServer.InitializeAsync(app, cancellationToken);
        await app.StartAsync(cancellationToken);
        return app;
    }

    /// <summary>The address the server listens on.</summary>
    public static Uri Url(WebApplication app) => new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    public static async Task StopAsync(WebApplication app)
    {
        await app.StopAsync(CancellationToken.None);
        await app.DisposeAsync();
    }

    /// <summary>Creates tenant <paramref name="id"/> and one API key with <paramref name="scopes"/> through the tenant store; returns the key.</summary>
    public static async Task<string> CreateTenantAsync(ITenantStore store, string id, string keyName, string[] scopes, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        if (!await store.TryCreateTenantAsync(new Tenant(id, id, Tenant.DefaultEdition, "local", new Residency(Residency.Strict, []), Tenant.Active, now), cancellationToken))
        {
            throw new InvalidOperationException($"Tenant {id} exists already.");
        }

        var key = ApiKeyFormat.Generate();
        await store.CreateApiKeyAsync(new ApiKey(Guid.NewGuid().ToString("n"), id, keyName, scopes, ApiKeyFormat.Hash(key), now), cancellationToken);
        return key;
    }
}
