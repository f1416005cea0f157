using Atp.Core.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Atp.Storage.Sqlite;

/// <summary>Registration of the embedded engine.</summary>
public static class SqliteStorageExtensions
{
    /// <summary>Registers <see cref="SqliteStore"/> as the tenant and log store.</summary>
    public static IServiceCollection AddAtpSqliteStorage(this IServiceCollection services, Action<SqliteStoreOptions>? configure = null)
    {
        var options = services.AddOptions<SqliteStoreOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<SqliteStore>();
        services.AddSingleton<ITenantStore>(sp => sp.GetRequiredService<SqliteStore>());
        services.AddSingleton<Atp.Core.Schemas.ISchemaStore>(sp => sp.GetRequiredService<SqliteStore>());
        services.AddSingleton<Atp.Core.Holds.ILegalHoldStore>(sp => sp.GetRequiredService<SqliteStore>());
        services.AddSingleton<Atp.Core.Erasure.IErasureRequestStore>(sp => sp.GetRequiredService<SqliteStore>());
        services.AddSingleton<Atp.Core.Query.IEventQueryStore>(sp => sp.GetRequiredService<SqliteStore>());
        services.AddSingleton<ILogStore>(sp => sp.GetRequiredService<SqliteStore>());
        return services;
    }
}
