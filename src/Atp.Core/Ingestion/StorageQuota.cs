namespace Atp.Core.Ingestion;

/// <summary>The most a tenant's log may store: events and leaf bytes, each 0 for unlimited.</summary>
public sealed record StorageQuota(long MaxStoredEvents, long MaxStoredBytes)
{
    public static StorageQuota Unlimited { get; } = new(0, 0);

    public bool IsUnlimited => MaxStoredEvents <= 0 && MaxStoredBytes <= 0;
}
