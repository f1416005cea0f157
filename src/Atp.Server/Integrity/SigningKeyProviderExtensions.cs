using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>Chooses the cell signing key provider from <c>Atp:Keys:Provider</c>: <c>file</c> (default) or <c>pkcs11</c>.</summary>
internal static class SigningKeyProviderExtensions
{
    public const string ProviderKey = "Atp:Keys:Provider";

    public static IServiceCollection AddAtpSigningKeys(this IServiceCollection services, IConfiguration configuration)
    {
        var provider = configuration[ProviderKey];
        if (string.IsNullOrEmpty(provider) || string.Equals(provider, "file", StringComparison.OrdinalIgnoreCase))
        {
            services.AddSingleton<ISigningKeyProvider, FileSigningKeyProvider>();
        }
        else if (string.Equals(provider, "pkcs11", StringComparison.OrdinalIgnoreCase))
        {
            services.AddOptions<Pkcs11KeyOptions>().BindConfiguration(Pkcs11KeyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
            services.AddSingleton<ISigningKeyProvider, Pkcs11SigningKeyProvider>();
        }
        else
        {
            throw new OptionsValidationException(ProviderKey, typeof(string), [$"{ProviderKey} must be 'file' or 'pkcs11', not '{provider}'."]);
        }

        return services;
    }
}
