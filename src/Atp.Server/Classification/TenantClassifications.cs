using System.Collections.Concurrent;
using Atp.Core.Classification;
using Atp.Core.Storage;
using Microsoft.Extensions.Options;

namespace Atp.Server.Classification;

/// <summary>
/// What ingest seals for each tenant: the cell's envelope setting and the data fields the tenant's active policy
/// classifies. Read from the store at most once per tenant every <see cref="Lifetime"/>, so an approved change applies
/// at once on the node that applied it (<see cref="Forget"/>) and within that time on the others.
/// </summary>
internal sealed class TenantClassifications(ITenantStore store, TimeProvider clock, IOptions<ClassificationOptions> options)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);

    // Bounded like the tenant cache: past this many tenants the plans are read again rather than kept for every tenant.
    private const int MaxTenants = 100_000;

    private readonly ConcurrentDictionary<string, (SealingPlan Plan, DateTimeOffset Expires)> _plans = new(StringComparer.Ordinal);
    private readonly SealingPlan _envelopeOnly = new(options.Value.SealEnvelopeFields, []);

    /// <summary>The tenant's sealing plan.</summary>
    public async ValueTask<SealingPlan> PlanAsync(string tenantId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        if (_plans.TryGetValue(tenantId, out var cached) && now < cached.Expires)
        {
            return cached.Plan;
        }

        var plan = _envelopeOnly;
        if (await store.ListPolicyVersionsAsync(tenantId, 1, cancellationToken).ConfigureAwait(false) is [var active]
            && active.Document.Classification is { Pii.Count: > 0 } classification)
        {
            plan = new SealingPlan(_envelopeOnly.Envelope, classification.Pii, classification.SubjectTargetType);
        }

        if (_plans.Count >= MaxTenants)
        {
            _plans.Clear();
        }

        _plans[tenantId] = (plan, now + Lifetime);
        return plan;
    }

    /// <summary>Drops the tenant's plan after its policy changed on this node.</summary>
    public void Forget(string tenantId) => _plans.TryRemove(tenantId, out _);
}
