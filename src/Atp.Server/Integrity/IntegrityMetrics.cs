using System.Diagnostics.Metrics;

namespace Atp.Server.Integrity;

/// <summary>
/// Meter <c>Atp.Integrity</c>: stored entries re-verified and mismatches found (by the read paths and the sweep), and
/// how far the sweep's current pass has come, and signatures made per signing key. Labels name the check or a public
/// key id, never a tenant or any content.
/// </summary>
internal sealed class IntegrityMetrics
{
    public const string MeterName = "Atp.Integrity";

    private readonly Counter<long> _checked;
    private readonly Counter<long> _mismatches;
    private long _position;
    private long _passes;
    private readonly Counter<long> _failedPasses;
    private readonly Counter<long> _signatures;

    public IntegrityMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _checked = meter.CreateCounter<long>("atp.integrity.entries_checked", "{entry}", "Stored log entries whose leaf bytes and nodes the integrity sweep re-verified");
        _mismatches = meter.CreateCounter<long>("atp.integrity.mismatches", "{mismatch}", "Stored leaves or nodes that did not match their hash (source: read or sweep)");
        meter.CreateObservableGauge("atp.integrity.sweep.position", () => Interlocked.Read(ref _position), "{entry}", "Entries checked so far in the integrity sweep's current pass, over all tenants");
        _failedPasses = meter.CreateCounter<long>("atp.integrity.sweep.failed_passes", "{pass}", "Integrity sweep passes cut short because the store could not be read");
        _signatures = meter.CreateCounter<long>("atp.signing.signatures", "{signature}", "Signatures made with the cell's signing keys (checkpoints, bundle manifests), by public key id");
        meter.CreateObservableCounter("atp.integrity.sweep.passes", () => Interlocked.Read(ref _passes), "{pass}", "Integrity sweep passes completed");
    }

    public void Checked(long entries) => _checked.Add(entries);

    public void Mismatch(string source, string kind) =>
        _mismatches.Add(1, new KeyValuePair<string, object?>("source", source), new KeyValuePair<string, object?>("kind", kind));

    public void SweepPosition(long entries) => Interlocked.Exchange(ref _position, entries);

    public void PassCompleted() => Interlocked.Increment(ref _passes);

    public void PassFailed() => _failedPasses.Add(1);

    /// <summary>Counts one signature by <paramref name="signer"/>; its key id is public (it is on every verifier key).</summary>
    public void Signed(Atp.Integrity.NoteSigner signer) =>
        _signatures.Add(1, new KeyValuePair<string, object?>("atp.key_id", signer.KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture)));
}
