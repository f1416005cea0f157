using System.ComponentModel.DataAnnotations;

namespace Atp.Server;

/// <summary>The <c>Atp</c> configuration section.</summary>
public sealed class AtpOptions
{
    public const string Section = "Atp";

    /// <summary>Where the database, the cell signing key and the bootstrap key live.</summary>
    [Required]
    public string DataDirectory { get; set; } = "./atp-data";

    /// <summary>The region this cell serves.</summary>
    [Required]
    [RegularExpression("^[a-z][a-z0-9-]{1,31}$")]
    public string Region { get; set; } = "local";

    /// <summary>Log origin prefix; a tenant's log origin is <c>{Origin}/{tenant}</c>. Also the cell signing key's name.</summary>
    [Required]
    [RegularExpression(@"^[A-Za-z0-9._~:/-]{1,200}$")]
    public string Origin { get; set; } = "atp.local/local-dev-1";

    public BootstrapOptions Bootstrap { get; set; } = new();

    public IntegrityOptions Integrity { get; set; } = new();

    public IngestionOptions Ingestion { get; set; } = new();

    public AuthOptions Auth { get; set; } = new();

    public QueryOptions Query { get; set; } = new();

    public RateLimitOptions RateLimits { get; set; } = new();

    public string TenantOrigin(string tenantId) => $"{Origin}/{tenantId}";
}

public sealed class BootstrapOptions
{
    /// <summary>A platform-admin API key to accept (first start, tests). Never logged.</summary>
    public string? AdminKey { get; set; }

    /// <summary>How long the key generated on first start stays valid (null: until revoked or rotated).</summary>
    [Range(typeof(TimeSpan), "00:05:00", "3650.00:00:00")]
    public TimeSpan? GeneratedKeyLifetime { get; set; }
}

public sealed class IntegrityOptions
{
    /// <summary>How often the sealer signs checkpoints for logs that grew.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many grown logs one durable transaction seals (one commit for all their checkpoints). On PostgreSQL each log
    /// of a batch holds one advisory lock until the commit, so this many per sealing node must fit in the server's lock
    /// table (max_locks_per_transaction × max_connections).
    /// </summary>
    [Range(1, 10_000)]
    public int SealBatchSize { get; set; } = 512;
}

public sealed class IngestionOptions
{
    [Range(1, 10_000)]
    public int MaxEventsPerRequest { get; set; } = 1000;

    [Range(1024, 64 * 1024 * 1024)]
    public int MaxRequestBytes { get; set; } = 1024 * 1024;

    /// <summary>How long an Idempotency-Key is remembered (at least 24 h).</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "365.00:00:00")]
    public TimeSpan IdempotencyRetention { get; set; } = TimeSpan.FromHours(24);
}

public sealed class AuthOptions
{
    /// <summary>How far a signed request's <c>created</c> may lie from the server's clock, either way.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan SignatureWindow { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>At most this many nonces are remembered per node (each for twice the window); beyond it signed requests are refused (401) until entries expire.</summary>
    [Range(1000, 100_000_000)]
    public int MaxRememberedNonces { get; set; } = 2_000_000;

    public OidcOptions Oidc { get; set; } = new();
}

/// <summary>OpenID Connect bearer tokens for people; off unless <see cref="Authority"/> is set.</summary>
public sealed class OidcOptions
{
    /// <summary>The issuer; its discovery document and JWKS are fetched from here.</summary>
    public Uri? Authority { get; set; }

    /// <summary>The audience every token must carry.</summary>
    public string? Audience { get; set; }

    /// <summary>False only for a lab or a test serving the authority over http on loopback.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>The claim naming the tenant; <c>tid</c> is tried when it is absent.</summary>
    [Required]
    public string TenantClaim { get; set; } = "atp_tenant";

    [Required]
    public string RolesClaim { get; set; } = "roles";
}

/// <summary>
/// Requests and work per second per tenant by edition (overridable per tenant), and requests per client IP.
/// Validated with its nested edition limits by <c>RateLimitOptionsValidator</c>.
/// </summary>
public sealed class RateLimitOptions
{
    public EditionLimits Default { get; set; } = new()
    {
        IngestPerSecond = 50, QueryPerSecond = 30, IngestEventsPerSecond = 2_000, IngestBytesPerSecond = 2 * 1024 * 1024, ReadCostPerSecond = 60,
        MaxConcurrentExports = 2, MaxDailyExportBytes = 10L * 1024 * 1024 * 1024, ExportJobMaxBytes = 2L * 1024 * 1024 * 1024,
    };

    public EditionLimits Enterprise { get; set; } = new()
    {
        IngestPerSecond = 200, QueryPerSecond = 100, IngestEventsPerSecond = 10_000, IngestBytesPerSecond = 10 * 1024 * 1024, ReadCostPerSecond = 240,
        MaxConcurrentExports = 5, MaxDailyExportBytes = 200L * 1024 * 1024 * 1024, ExportJobMaxBytes = 50L * 1024 * 1024 * 1024,
    };

    /// <summary>Requests per second from one IP without a credential that verified; health probes are never limited.</summary>
    [Range(1, 1_000_000)]
    public int AnonymousPerIpPerSecond { get; set; } = 50;

    /// <summary>Refused (401/403) requests and unverified credentials one IP may send per minute before its requests (health probes excepted) get 429.</summary>
    [Range(1, 1_000_000)]
    public int FailuresPerIpPerMinute { get; set; } = 60;

    public EditionLimits For(string edition) => edition == Core.Tenants.Tenant.EnterpriseEdition ? Enterprise : Default;
}

public sealed class EditionLimits
{
    [Range(1, 10_000_000)]
    public int IngestPerSecond { get; set; }

    [Range(1, 10_000_000)]
    public int QueryPerSecond { get; set; }

    /// <summary>Events ingested per second, counted after the body is parsed (a 1,000-event batch uses 1,000).</summary>
    [Range(1, 100_000_000)]
    public int IngestEventsPerSecond { get; set; }

    /// <summary>Request-body bytes ingested per second.</summary>
    [Range(1024, int.MaxValue)]
    public int IngestBytesPerSecond { get; set; }

    /// <summary>Read-cost units per second (see <c>ReadCost</c>: a plain read costs 1, a verified 1,000-event search page 110).</summary>
    [Range(1, 10_000_000)]
    public int ReadCostPerSecond { get; set; }

    /// <summary>Export jobs a tenant may have queued or running at once.</summary>
    [Range(1, 1000)]
    public int MaxConcurrentExports { get; set; }

    /// <summary>Bytes of export jobs a tenant may start per UTC day.</summary>
    [Range(typeof(long), "1024", "9223372036854775807")]
    public long MaxDailyExportBytes { get; set; }

    /// <summary>The largest file one export job may write.</summary>
    [Range(typeof(long), "1024", "9223372036854775807")]
    public long ExportJobMaxBytes { get; set; }

    /// <summary>Events a tenant's log may hold; 0 (the default of every edition) is unlimited.</summary>
    [Range(typeof(long), "0", "9223372036854775807")]
    public long MaxStoredEvents { get; set; }

    /// <summary>Bytes of leaves a tenant's log may hold; 0 (the default of every edition) is unlimited.</summary>
    [Range(typeof(long), "0", "9223372036854775807")]
    public long MaxStoredBytes { get; set; }
}

public sealed class QueryOptions
{
    /// <summary>
    /// Whether this node projects the outbox into the read models. In a PostgreSQL cell, ingest nodes can leave it to
    /// the cell's other nodes (any node that projects drains every tenant's outbox); such a node still measures and
    /// reports the projection lag. A single node must project, or its searches never see new events.
    /// </summary>
    public bool Projector { get; set; } = true;

    /// <summary>A search page stops before its events exceed this many bytes; the cursor continues from there.</summary>
    [Range(1024, 256 * 1024 * 1024)]
    public int MaxResponseBytes { get; set; } = 25 * 1024 * 1024;
}
