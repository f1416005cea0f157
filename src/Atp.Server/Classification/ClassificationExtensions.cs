using Atp.Core.Classification;
using Microsoft.Extensions.Options;

namespace Atp.Server.Classification;

/// <summary>Registration of field classification: the key provider, the data key ring and the sealer.</summary>
internal static class ClassificationExtensions
{
    public static IServiceCollection AddAtpClassification(this IServiceCollection services)
    {
        services.AddOptions<ClassificationOptions>().BindConfiguration(ClassificationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IKeyProvider, FileKeyProvider>();
        services.AddSingleton(sp => new DataKeyRing(
            sp.GetRequiredService<IKeyProvider>(), sp.GetRequiredService<IDataKeyStore>(), sp.GetRequiredService<IOptions<ClassificationOptions>>().Value.DataKeyCacheSize));
        services.AddSingleton<FieldSealer>();
        return services;
    }
}
