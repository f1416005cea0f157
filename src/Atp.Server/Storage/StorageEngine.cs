using Atp.Core.Storage;
using Atp.Storage.Postgres;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Options;

namespace Atp.Server.Storage;

/// <summary>The storage engine this node runs on (<c>Atp:Storage:Provider</c>), as the server's other parts need it.</summary>
internal sealed class StorageEngine(ITenantStore tenants, Func<bool> isWriterRunning, StorageSpace space)
{
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";

    /// <summary>The engine's own tenant store (the gateway wraps it in a cache).</summary>
    public ITenantStore Tenants => tenants;

    /// <summary>False once the engine's log writer has stopped for good.</summary>
    public bool IsWriterRunning => isWriterRunning();

    /// <summary>Whether the engine's disk has room for appends.</summary>
    public StorageSpace Space => space;
}

/// <summary>Registration of the configured engine.</summary>
internal static class StorageEngineExtensions
{
    /// <summary>
    /// <c>sqlite</c> (default): one file under <c>Atp:DataDirectory</c>. <c>postgres</c>: <c>ConnectionStrings:Atp</c> (the
    /// application role) and, optionally, <c>ConnectionStrings:AtpAdmin</c> (the owner role; migrations run at start).
    /// </summary>
    public static IServiceCollection AddAtpStorage(this IServiceCollection services, IConfiguration configuration)
    {
        var provider = configuration["Atp:Storage:Provider"] ?? StorageEngine.Sqlite;
        switch (provider)
        {
            case StorageEngine.Sqlite:
                services.AddAtpSqliteStorage();
                services.AddOptions<SqliteStoreOptions>().BindConfiguration("Atp:Sqlite").Configure<IOptions<AtpOptions>>((sqlite, atp) => sqlite.DataDirectory = atp.Value.DataDirectory);
                services.AddSingleton(sp =>
                {
                    var store = sp.GetRequiredService<SqliteStore>();
                    return new StorageEngine(store, () => store.IsWriterRunning, store.Space);
                });
                services.AddSingleton<Core.Classification.IDataKeyStore>(sp => sp.GetRequiredService<SqliteStore>());
                services.AddSingleton(sp => new Integrity.AuditSourceFactory(() => SqliteAuditSource.Open(sp.GetRequiredService<IOptions<AtpOptions>>().Value.DataDirectory)));
                break;
            case StorageEngine.Postgres:
                services.AddAtpPostgresStorage(postgres =>
                {
                    postgres.ConnectionString = configuration.GetConnectionString("Atp") ?? "";
                    postgres.AdminConnectionString = configuration.GetConnectionString("AtpAdmin");
                });
                services.AddOptions<PostgresStoreOptions>().BindConfiguration("Atp:Postgres").PostConfigure<IOptions<AtpOptions>>((postgres, atp) =>
                {
                    // Recent leaves serve this node's projector only.
                    if (!atp.Value.Query.Projector)
                    {
                        postgres.RecentLeavesBytes = 0;
                    }
                });
                services.AddSingleton(sp =>
                {
                    var store = sp.GetRequiredService<PostgresStore>();
                    return new StorageEngine(store, () => store.IsWriterRunning, store.Space);
                });

                services.AddSingleton<Core.Classification.IDataKeyStore>(sp => sp.GetRequiredService<PostgresStore>());

                // Auditing reads every tenant's rows, which row-level security grants only the owner role.
                services.AddSingleton(sp => sp.GetRequiredService<IOptions<PostgresStoreOptions>>().Value.AdminConnectionString is { Length: > 0 } owner
                    ? new Integrity.AuditSourceFactory(() => PostgresAuditSource.Open(owner))
                    : new Integrity.AuditSourceFactory(null, "on PostgreSQL it reads every tenant's log as the owner role; set ConnectionStrings:AtpAdmin"));
                break;
            default:
                throw new OptionsValidationException(
                    "Atp:Storage:Provider", typeof(AtpOptions), [$"Atp:Storage:Provider must be '{StorageEngine.Sqlite}' or '{StorageEngine.Postgres}', not '{provider}'."]);
        }

        return services;
    }
}
