using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Classification;
using Atp.Server.Events;
using Atp.Server.Export;
using Atp.Server.Gateway;
using Atp.Server.Health;
using Atp.Server.Integrity;
using Atp.Server.OpenApi;
using Atp.Server.Schemas;
using Atp.Server.Storage;
using Atp.Server.Tenants;
using Atp.Server.Telemetry;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Scalar.AspNetCore;

namespace Atp.Server;

/// <summary>Composition of the ATP server: configuration, services, middleware and endpoints.</summary>
public static class AtpServer
{
    /// <summary>Builds the application; tests pass extra configuration (port 0, a temporary data directory).</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json ships next to the binaries; the working directory only anchors relative data paths.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        configure?.Invoke(builder);
        var services = builder.Services;

        // Authentication pulls in ASP.NET Data Protection; ATP issues no cookies, but its keys belong in the data
        // directory rather than the user profile.
        var dataDirectory = Path.GetFullPath(builder.Configuration["Atp:DataDirectory"] ?? "./atp-data");
        OwnerOnlyFiles.Apply(dataDirectory);
        services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(dataDirectory, "dataprotection")));
        services.AddOptions<AtpOptions>().BindConfiguration(AtpOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System); // tests may register a clock first (configure)
        services.AddAtpStorage(builder.Configuration);
        services.AddOptions<TenantCacheOptions>().BindConfiguration(TenantCacheOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp =>
        {
            var cache = sp.GetRequiredService<IOptions<TenantCacheOptions>>().Value;
            var lifetime = cache.LifetimeFor(builder.Configuration["Atp:Storage:Provider"] ?? StorageEngine.Sqlite);
            return new CachingTenantStore(sp.GetRequiredService<StorageEngine>().Tenants, sp.GetRequiredService<TimeProvider>(), lifetime, cache.Capacity, sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        services.AddSingleton<ITenantStore>(sp => sp.GetRequiredService<CachingTenantStore>());
        services.AddAtpClassification();
        services.AddSingleton(sp => new IngestionService(
            sp.GetRequiredService<ILogStore>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Core.Classification.FieldSealer>()));
        services.AddSingleton<Classification.TenantClassifications>();
        services.AddOptions<Schemas.SchemaRegistryOptions>().BindConfiguration(Schemas.SchemaRegistryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Schemas.SchemaRegistry>();
        services.AddOptions<Policy.PolicyOptions>().BindConfiguration(Policy.PolicyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<Holds.HoldOptions>().BindConfiguration(Holds.HoldOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<Erasure.ErasureOptions>().BindConfiguration(Erasure.ErasureOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Erasure.SubjectEraser>();
        services.AddAtpSigningKeys(builder.Configuration);
        services.AddOptions<KeyRotationOptions>().BindConfiguration(KeyRotationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SigningKeyRotation>();
        services.AddSingleton(sp => sp.GetRequiredService<ILogStore>().Quarantine);
        services.AddSingleton(_ => PublishedHeads.Open(dataDirectory));
        services.AddSingleton<RollbackGuard>();
        services.AddSingleton<IValidateOptions<AtpOptions>, IntegrityOptionsValidator>();
        services.AddSingleton<CheckpointSealer>();
        services.AddHostedService(sp => sp.GetRequiredService<CheckpointSealer>());
        services.AddAtpGateway(builder.Configuration);
        services.AddSingleton(sp => new AlertDetector(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<PlatformAuditLog>();
        services.AddSingleton<IntegrityMetrics>();
        services.AddSingleton<StoredLeafCheck>();
        services.AddOptions<IntegritySweepOptions>().BindConfiguration(IntegritySweepOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddHostedService<IntegritySweep>();
        services.AddSingleton<Query.QueryCursor>();
        services.AddSingleton<Query.ProjectionService>();
        services.AddHostedService(sp => sp.GetRequiredService<Query.ProjectionService>());
        services.AddOptions<Query.ReadModelSweepOptions>().BindConfiguration(Query.ReadModelSweepOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddHostedService<Query.ReadModelSweep>();
        services.AddHostedService(sp => sp.GetRequiredService<PlatformAuditLog>());
        services.AddHostedService<QuarantineAlarm>();
        services.AddAtpExports();
        Retention.RetentionExtensions.AddAtpRetention(services);
        builder.AddAtpTelemetry();
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = Problems.Problem.UseAtpType);
        services.AddExceptionHandler<Problems.StorageFullExceptionHandler>();
        services.AddExceptionHandler<Problems.BadRequestExceptionHandler>();
        services.AddHealthChecks().AddCheck<ReadinessCheck>("ready", tags: ["ready"]);
        services.AddAtpOpenApi();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 8 * 1024 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            kestrel.Limits.MaxRequestHeaderCount = 64;
            kestrel.Limits.MaxRequestLineSize = 8 * 1024;
            kestrel.Limits.Http2.MaxRequestHeaderFieldSize = 16 * 1024;
        });

        // The shipped default address applies only when no other source names one: ASPNETCORE_URLS,
        // ASPNETCORE_HTTP_PORTS / HTTPS_PORTS, --urls and Kestrel:Endpoints all win over it.
        if (!HasListenAddress(builder.Configuration))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        var forwarded = TrustedProxies.FromConfiguration(builder.Configuration);
        var app = builder.Build();
        if (forwarded is not null)
        {
            app.UseForwardedHeaders(forwarded);
        }

        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseMiddleware<ClientThrottle>();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapTenantEndpoints();
        app.MapPlatformKeyEndpoints();
        app.MapKekEndpoints();
        app.MapEventEndpoints();
        app.MapSchemaEndpoints();
        Policy.PolicyEndpoints.MapPolicyEndpoints(app);
        Erasure.ErasureEndpoints.MapErasureEndpoints(app);
        Subjects.SubjectEndpoints.MapSubjectEndpoints(app);
        Holds.HoldEndpoints.MapHoldEndpoints(app);
        Retention.RetentionEndpoints.MapRetentionEndpoints(app);
        app.MapLogEndpoints();
        app.MapExportEndpoints();
        app.MapAtpTelemetry();
        app.MapHealthChecks("/livez", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = Health.ReadinessResponse.WriteAsync });
        app.MapOpenApi();
        app.MapScalarApiReference();
        return app;
    }

    /// <summary>Where the server listens when nothing else is configured.</summary>
    public const string DefaultUrl = "http://127.0.0.1:8080";

    private static bool HasListenAddress(ConfigurationManager configuration) =>
        !string.IsNullOrEmpty(configuration["urls"]) || !string.IsNullOrEmpty(configuration["http_ports"]) || !string.IsNullOrEmpty(configuration["https_ports"])
        || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();

    /// <summary>Start-up work that must finish before traffic: open the store, load the key, bootstrap the admin, first seal.</summary>
    public static async Task InitializeAsync(WebApplication app, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(app);
        _ = app.Services.GetRequiredService<StorageEngine>();
        _ = app.Services.GetRequiredService<ISigningKeyProvider>();
        await BootstrapAdmin.EnsureAsync(app.Services, cancellationToken).ConfigureAwait(false);
        await app.Services.GetRequiredService<PlatformAuditLog>().EnsureTenantAsync(cancellationToken).ConfigureAwait(false);
        await app.Services.GetRequiredService<RollbackGuard>().CheckAsync(cancellationToken).ConfigureAwait(false);
    }
}
