using Atp.Core.Holds;
using Atp.Core.Ingestion;
using Atp.Core.Retention;
using Atp.Core.Storage;
using Microsoft.Extensions.Options;

namespace Atp.Server.Retention;

internal static class RetentionExtensions
{
    /// <summary>The retention pass, its options and the background service that runs it.</summary>
    public static IServiceCollection AddAtpRetention(this IServiceCollection services)
    {
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        // Legal holds are optional here: without a hold store registered, nothing is held.
        services.AddSingleton(sp => new RetentionPass(
            sp.GetRequiredService<ILogStore>(),
            sp.GetRequiredService<ITenantStore>(),
            sp.GetRequiredService<IngestionService>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILegalHoldStore>())
        {
            MaxEntriesPerRecord = sp.GetRequiredService<IOptions<RetentionOptions>>().Value.EntriesPerRecord,
        });
        services.AddHostedService<RetentionService>();
        return services;
    }
}
