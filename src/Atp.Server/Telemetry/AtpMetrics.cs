using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;

namespace Atp.Server.Telemetry;

/// <summary>
/// The server's own instruments beyond those of the projector and the integrity sweep: what was ingested, what the
/// gateway refused, how far behind the sealer is. Labels are bounded sets (edition, region, policy, action, outcome);
/// never a key, a secret or a client address, and the tenant only when <see cref="TelemetryOptions.TenantLabels"/> says so.
/// </summary>
internal sealed class AtpMetrics
{
    public const string MeterName = "Atp.Server";

    private readonly Counter<long> _events;
    private readonly Histogram<int> _batchSize;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _checkpoints;
    private readonly KeyValuePair<string, object?> _region;
    private readonly bool _tenantLabels;

    public AtpMetrics(IMeterFactory meters, IOptions<AtpOptions> options, IOptions<TelemetryOptions> telemetry)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        _region = new("atp.region", options.Value.Region);
        _tenantLabels = telemetry.Value.TenantLabels;
        _events = meter.CreateCounter<long>("atp.ingest.events", "{event}", "Events made durable and receipted (rate = events/s)");
        _batchSize = meter.CreateHistogram<int>("atp.ingest.batch_size", "{event}", "Events per accepted ingest request",
            tags: null,
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000] });
        _rateLimited = meter.CreateCounter<long>("atp.gateway.rate_limited", "{request}", "Requests refused with 429 by a rate limit or quota, by policy");
        _refusals = meter.CreateCounter<long>("atp.gateway.refusals", "{request}", "Requests refused by authentication or access control (auth.failed, access.cross-tenant, ...)");
        _checkpoints = meter.CreateCounter<long>("atp.sealer.checkpoints", "{checkpoint}", "Tenant logs the sealer signed a checkpoint for");
        meter.CreateObservableGauge(
            "atp.sealer.lag",
            () => SealerLag?.Invoke()?.TotalSeconds ?? 0,
            "s",
            "Seconds since the sealer last completed a pass (each pass signs every log that grew); grows while sealing stalls");
    }

    public void Ingested(string edition, string tenantId, int events, bool replayed)
    {
        if (replayed)
        {
            return;
        }

        var tags = new TagList { _region, { "atp.edition", edition } };
        if (_tenantLabels)
        {
            tags.Add("atp.tenant", tenantId);
        }

        _events.Add(events, tags);
        _batchSize.Record(events, tags);
    }

    public void RateLimited(string policy) => _rateLimited.Add(1, _region, new("atp.policy", policy));

    public void Refused(string action) => _refusals.Add(1, _region, new("atp.action", action));

    public void Sealed(int logs)
    {
        if (logs > 0)
        {
            _checkpoints.Add(logs, _region);
        }
    }

    /// <summary>How long ago the sealer last completed a pass; set by the sealer when it starts.</summary>
    public Func<TimeSpan?>? SealerLag { get; set; }
}
