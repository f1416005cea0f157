namespace Atp.Server.Tests;

/// <summary>A fresh server with tenant "acme" and a client holding a key with every tenant scope.</summary>
public abstract class AcmeServerTests : IAsyncLifetime
{
    protected ServerFixture Server { get; private set; } = null!;

    protected HttpClient Acme { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await ServerFixture.StartAsync();
        Acme = Server.ClientWithKey(await Server.CreateTenantWithKeyAsync("acme"));
    }

    public async Task DisposeAsync()
    {
        Acme.Dispose();
        await Server.DisposeAsync();
    }
}
