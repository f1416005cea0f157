namespace Atp.Core.Holds;

/// <summary>Where a cell keeps its tenants' legal holds. Every call is scoped to one tenant.</summary>
public interface ILegalHoldStore
{
    /// <summary>Stores a new active hold.</summary>
    Task CreateHoldAsync(LegalHold hold, CancellationToken cancellationToken);

    /// <summary>One hold of the tenant, or null.</summary>
    Task<LegalHold?> GetHoldAsync(string tenantId, string holdId, CancellationToken cancellationToken);

    /// <summary>The tenant's holds, newest first; released ones only when asked for.</summary>
    Task<IReadOnlyList<LegalHold>> ListHoldsAsync(string tenantId, bool includeReleased, CancellationToken cancellationToken);

    /// <summary>Releases an active hold; false when there is no such active hold.</summary>
    Task<bool> ReleaseHoldAsync(string tenantId, string holdId, string releasedBy, DateTimeOffset releasedAt, CancellationToken cancellationToken);
}
