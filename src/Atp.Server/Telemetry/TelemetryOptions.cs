using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Telemetry;

/// <summary>
/// <c>Atp:Telemetry</c>: where metrics, traces and logs go. Off by default: with neither an OTLP endpoint nor the
/// Prometheus endpoint the server still records its instruments (in-process, for nothing to read) and costs nothing more.
/// </summary>
internal sealed class TelemetryOptions : IValidatableObject
{
    public const string Section = "Atp:Telemetry";

    /// <summary>
    /// False leaves OpenTelemetry out entirely (no exporter, no listener on the meters): for measuring what telemetry
    /// costs (bench/Atp.LoadTest --telemetry-overhead); the exporters below then do nothing.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>OTLP collector for metrics, traces and logs (e.g. <c>http://otel-collector:4317</c>); null = no export.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default, port 4317) or <c>http/protobuf</c> (port 4318).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Serve Prometheus' text format on <see cref="PrometheusPath"/> (opt-in: it is unauthenticated).</summary>
    public bool Prometheus { get; set; }

    public string PrometheusPath { get; set; } = "/metrics";

    /// <summary>
    /// Label per-tenant instruments with the tenant id. Off by default: with thousands of tenants every series would
    /// multiply by them; turn it on only where the number of tenants is small.
    /// </summary>
    public bool TenantLabels { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled && (Prometheus || OtlpEndpoint is not null))
        {
            yield return new ValidationResult("Atp:Telemetry:Enabled is false, so Atp:Telemetry:Prometheus and Atp:Telemetry:OtlpEndpoint cannot be set.", [nameof(Enabled)]);
        }

        if (OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            yield return new ValidationResult($"Atp:Telemetry:OtlpProtocol must be 'grpc' or 'http/protobuf', not '{OtlpProtocol}'.", [nameof(OtlpProtocol)]);
        }

        if (OtlpEndpoint is { } endpoint && (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https")))
        {
            yield return new ValidationResult("Atp:Telemetry:OtlpEndpoint must be an absolute http(s) URL.", [nameof(OtlpEndpoint)]);
        }

        if (!PrometheusPath.StartsWith('/') || PrometheusPath.StartsWith("/v1/", StringComparison.OrdinalIgnoreCase))
        {
            yield return new ValidationResult("Atp:Telemetry:PrometheusPath must start with '/' and lie outside /v1/.", [nameof(PrometheusPath)]);
        }
    }
}
