using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Atp.Server.Telemetry;

/// <summary>OpenTelemetry for the server: ATP's meters and activity sources (<c>Atp.*</c>), ASP.NET Core and the runtime.</summary>
internal static class TelemetryExtensions
{
    /// <summary>Every ATP meter and activity source is named <c>Atp.&lt;component&gt;</c>.</summary>
    public const string SourcePattern = "Atp.*";

    private static readonly double[] RequestDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10];

    public static WebApplicationBuilder AddAtpTelemetry(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AtpMetrics>();

        // Read here as well as through the options: the exporters are chosen while the container is built.
        var telemetry = builder.Configuration.GetSection(TelemetryOptions.Section).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var region = builder.Configuration["Atp:Region"] ?? "local";

        // Every log line written inside a request carries its trace and span ids (W3C trace context, propagated from
        // the caller's traceparent header by ASP.NET Core), next to the request id that problem bodies name.
        builder.Logging.Configure(logging => logging.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        if (!telemetry.Enabled)
        {
            return builder;
        }

        var otel = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService("atp-server", serviceVersion: typeof(TelemetryExtensions).Assembly.GetName().Version?.ToString())
                .AddAttributes([new("atp.region", region)]))
            .WithMetrics(metrics =>
            {
                // Of ASP.NET Core's meters only request durations and connections: routing, authentication and the
                // memory pool would each add work to every request (measured: docs/performance.md, "Telemetry").
                metrics.AddMeter(SourcePattern, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel").AddRuntimeInstrumentation()

                    // The SLO alerts (deploy/observability) count requests above 300 ms (ingest) and 500 ms (queries):
                    // the request-duration histogram needs bucket boundaries exactly there.
                    .AddView("http.server.request.duration", new ExplicitBucketHistogramConfiguration { Boundaries = RequestDurationBuckets });
                if (telemetry.Prometheus)
                {
                    metrics.AddPrometheusExporter();
                }

                if (telemetry.OtlpEndpoint is { } endpoint)
                {
                    metrics.AddOtlpExporter(otlp => Configure(otlp, endpoint, telemetry.OtlpProtocol));
                }
            });

        // Spans and log records leave the process only over OTLP: without an endpoint no span is recorded at all (a
        // sampled span per request costs CPU even when nothing exports it).
        if (telemetry.OtlpEndpoint is { } otlpEndpoint)
        {
            otel.WithTracing(tracing => tracing
                    .AddSource(SourcePattern)
                    .AddAspNetCoreInstrumentation(asp => asp.Filter = context => !IsProbe(context.Request.Path))
                    .AddOtlpExporter(otlp => Configure(otlp, otlpEndpoint, telemetry.OtlpProtocol)))
                .WithLogging(logging => logging.AddOtlpExporter(otlp => Configure(otlp, otlpEndpoint, telemetry.OtlpProtocol)));
        }

        return builder;
    }

    /// <summary>Maps the Prometheus scrape endpoint when <see cref="TelemetryOptions.Prometheus"/> is on.</summary>
    public static WebApplication MapAtpTelemetry(this WebApplication app)
    {
        var telemetry = app.Services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        if (telemetry.Prometheus)
        {
            // Unauthenticated, as Prometheus scrapes: the instruments carry no secret, no key and no client address.
            app.MapPrometheusScrapingEndpoint(telemetry.PrometheusPath).AllowAnonymous();
        }

        return app;
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/livez") || path.StartsWithSegments("/readyz") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/metrics");

    private static void Configure(OtlpExporterOptions otlp, Uri endpoint, string protocol)
    {
        otlp.Endpoint = endpoint;
        otlp.Protocol = protocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
    }
}
