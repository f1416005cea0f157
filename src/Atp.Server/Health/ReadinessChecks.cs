using Atp.Core.Storage;
using Atp.Server.Integrity;
using Atp.Server.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Atp.Server.Health;

/// <summary>
/// Ready = the store answers and its writer runs and has disk space, the signing key is loaded, the sealer and the projector
/// are running; reports the projection lag. Quarantined tenant logs make the node Degraded (still HTTP 200: every other
/// tenant is served) and are listed as <c>quarantinedTenants</c>.
/// </summary>
internal sealed class ReadinessCheck(StorageEngine engine, ILogStore store, ISigningKeyProvider keys, CheckpointSealer sealer, Query.ProjectionService projection) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!engine.IsWriterRunning)
        {
            return HealthCheckResult.Unhealthy("The log writer has stopped.");
        }

        // Ready means "can append now": reads are still served while the disk is full, appends are not.
        if (engine.Space.IsFull)
        {
            return HealthCheckResult.Unhealthy("The store's disk is full; appends are refused until space returns.");
        }

        try
        {
            await store.GetTreeHeadAsync("readiness-probe", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or IOException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("The store does not answer.");
        }

        if (keys.Verifiers.Count == 0)
        {
            return HealthCheckResult.Unhealthy("No signing key is loaded.");
        }

        // Monotonic ages: a wall-clock jump must neither fail the probe nor hide a stalled worker.
        if (sealer.SinceLastSuccess is not { } sinceSealed || sinceSealed > (3 * sealer.Interval) + TimeSpan.FromSeconds(5))
        {
            return HealthCheckResult.Unhealthy("The checkpoint sealer is not running.");
        }

        // Freshness of search: projection lag is reported; a projector that stopped measuring is not ready.
        // Dead letters and a read-model rebuild degrade search, not appends: reported, still ready.
        var data = new Dictionary<string, object>
        {
            ["projectionLagSeconds"] = Math.Round(projection.Lag.TotalSeconds, 3),
            ["projectionDeadLetters"] = projection.DeadLetters,
            ["projectionRebuilding"] = projection.Rebuilding,
        };
        if (projection.SinceMeasured > TimeSpan.FromSeconds(30))
        {
            return HealthCheckResult.Unhealthy("The projector is not running.", data: data);
        }

        if (store.Quarantine.List() is { Count: > 0 } quarantined)
        {
            data["quarantinedTenants"] = quarantined.Select(q => q.TenantId).ToArray();
            return HealthCheckResult.Degraded($"Appends and checkpoints are refused for {quarantined.Count} quarantined tenant log(s) whose stored tree state failed the fork or rollback check; other tenants are served.", data: data);
        }

        return HealthCheckResult.Healthy(data: data);
    }
}
