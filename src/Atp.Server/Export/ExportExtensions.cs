using Microsoft.Extensions.Options;

namespace Atp.Server.Export;

/// <summary>Registration of export jobs and the daily bundles.</summary>
internal static class ExportExtensions
{
    public static IServiceCollection AddAtpExports(this IServiceCollection services)
    {
        services.AddOptions<ExportOptions>().BindConfiguration(ExportOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ExportOptions>, ExportOptionsValidator>();
        services.AddSingleton<ExportJobStore>();
        services.AddSingleton<ExportMetrics>();
        services.AddSingleton<ExportService>();
        services.AddSingleton<ExportBundles>();
        services.AddSingleton<ExportWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<ExportWorker>());
        return services;
    }
}
