using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Gateway;

/// <summary>
/// The gateway's cache of API keys and tenants (<see cref="CachingTenantStore"/>), section <c>Atp:TenantCache</c>.
/// </summary>
public sealed class TenantCacheOptions
{
    public const string Section = "Atp:TenantCache";

    /// <summary>The PostgreSQL default: other nodes share the store, and their changes must show here within 2 s.</summary>
    public static readonly TimeSpan SharedStoreLifetime = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The embedded default: this process is the only one that changes the store's tenants and keys, and every change it
    /// makes drops the cached entry at once, so the lifetime only bounds how long an unused entry holds memory.
    /// </summary>
    public static readonly TimeSpan EmbeddedStoreLifetime = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a found key or tenant is served from the cache. Unset: 2 s on PostgreSQL, 60 s on the embedded engine.
    /// On PostgreSQL this is how long a change made through another node may take to show on this one.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan? Lifetime { get; set; }

    /// <summary>
    /// Entries each of the two caches (keys, tenants) holds at most; a miss beyond it evicts the least recently used
    /// entry, one entry per miss, so memory stays bounded however many tenants the cell has.
    /// </summary>
    [Range(128, 10_000_000)]
    public int Capacity { get; set; } = 100_000;

    /// <summary>The lifetime in force on the configured engine.</summary>
    public TimeSpan LifetimeFor(string engine) =>
        Lifetime ?? (engine == Storage.StorageEngine.Postgres ? SharedStoreLifetime : EmbeddedStoreLifetime);
}
