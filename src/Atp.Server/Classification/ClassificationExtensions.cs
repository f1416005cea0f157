using Atp.Core.Classification;
using Microsoft.Extensions.Options;

namespace Atp.Server.Classification;

/// <summary>Registration of field classification: the key provider, the data key ring, the sealer and the opener for <c>pii:read</c>.</summary>
internal static class ClassificationExtensions
{
    public static IServiceCollection AddAtpClassification(this IServiceCollection services)
    {
        services.AddOptions<ClassificationOptions>().BindConfiguration(ClassificationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IKeyProvider, FileKeyProvider>();
        services.AddSingleton(sp => new DataKeyRing(
            sp.GetRequiredService<IKeyProvider>(), sp.GetRequiredService<IDataKeyStore>(), sp.GetRequiredService<IOptions<ClassificationOptions>>().Value.DataKeyCacheSize));
        services.AddSingleton<FieldSealer>();
        services.AddSingleton<FieldOpener>();
        services.AddSingleton<ClassifiedReads>();
        return services;
    }
}
