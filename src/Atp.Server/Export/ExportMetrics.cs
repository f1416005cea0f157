using System.Diagnostics.Metrics;

namespace Atp.Server.Export;

/// <summary>
/// Meter <c>Atp.Export</c>: jobs that ended by format and outcome, bytes written, daily bundles written or failed.
/// Labels name the format and outcome only, never a tenant.
/// </summary>
internal sealed class ExportMetrics
{
    public const string MeterName = "Atp.Export";

    private readonly Counter<long> _jobs;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _daily;

    public ExportMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        _jobs = meter.CreateCounter<long>("atp.export.jobs", "{job}", "Export jobs that ended (outcome: succeeded, failed, cancelled)");
        _bytes = meter.CreateCounter<long>("atp.export.bytes", "By", "Bytes of finished export files");
        _daily = meter.CreateCounter<long>("atp.export.daily_bundles", "{bundle}", "Daily bundles written (outcome: written) or not (failed; retried at the next sweep)");
    }

    public void JobEnded(string format, string outcome, long bytes)
    {
        _jobs.Add(1, new KeyValuePair<string, object?>("format", format), new KeyValuePair<string, object?>("outcome", outcome));
        if (bytes > 0 && outcome == ExportStates.Succeeded)
        {
            _bytes.Add(bytes, new KeyValuePair<string, object?>("format", format));
        }
    }

    public void Daily(string outcome) => _daily.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
}
