using Atp.Core.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Atp.Storage.Postgres;

/// <summary>Registration of the scale-out engine.</summary>
public static class PostgresStorageExtensions
{
    /// <summary>Registers <see cref="PostgresStore"/> as the tenant and log store.</summary>
    public static IServiceCollection AddAtpPostgresStorage(this IServiceCollection services, Action<PostgresStoreOptions>? configure = null)
    {
        var options = services.AddOptions<PostgresStoreOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<PostgresStore>();
        services.AddSingleton<ITenantStore>(sp => sp.GetRequiredService<PostgresStore>());
        services.AddSingleton<Atp.Core.Schemas.ISchemaStore>(sp => sp.GetRequiredService<PostgresStore>());
        services.AddSingleton<Atp.Core.Holds.ILegalHoldStore>(sp => sp.GetRequiredService<PostgresStore>());
        services.AddSingleton<Atp.Core.Erasure.IErasureRequestStore>(sp => sp.GetRequiredService<PostgresStore>());
        services.AddSingleton<ILogStore>(sp => sp.GetRequiredService<PostgresStore>());
        services.AddSingleton<Atp.Core.Query.IEventQueryStore>(sp => sp.GetRequiredService<PostgresStore>());
        return services;
    }
}
