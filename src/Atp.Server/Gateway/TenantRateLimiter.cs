using System.Globalization;
using System.Threading.RateLimiting;
using Atp.Core.Tenants;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// Per-tenant limits, from the tenant's override or its edition's default: requests per second by kind (ingest:
/// writes; query: reads), and the work they carry — events and body bytes ingested, read cost (<see cref="ReadCost"/>).
/// A token bucket per (tenant, policy, limit): a changed limit starts a fresh bucket at once. A bucket holds one
/// second of its limit, but never less than the largest single charge, so a full-size request is possible at any
/// limit and then waits out its cost.
/// </summary>
internal sealed class TenantRateLimiter : IDisposable
{
    public const string Ingest = "ingest";
    public const string Query = "query";
    public const string IngestEvents = "ingest-events";
    public const string IngestBytes = "ingest-bytes";
    public const string ReadCostPolicy = "read-cost";

    private readonly IOptions<AtpOptions> _options;
    private readonly PartitionedRateLimiter<Bucket> _limiter;

    public TenantRateLimiter(IOptions<AtpOptions> options)
    {
        _options = options;
        _limiter = PartitionedRateLimiter.Create<Bucket, Bucket>(
            key => RateLimitPartition.GetTokenBucketLimiter(key, k => new TokenBucketRateLimiterOptions
            {
                TokenLimit = k.Capacity,
                TokensPerPeriod = k.Limit,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    /// <summary>Takes one request from the tenant's bucket of that kind; null when allowed, else the refusal to send.</summary>
    public RateLimitRefusal? TryAcquire(Tenant tenant, string kind)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        return TryTake(BucketOf(tenant, kind), 1);
    }

    /// <summary>Charges a parsed ingest body: its events and its bytes. Nothing is taken unless both budgets allow it.</summary>
    public RateLimitRefusal? TryAcquireIngestWork(Tenant tenant, int events, long bytes)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var eventBucket = BucketOf(tenant, IngestEvents);
        var byteBucket = BucketOf(tenant, IngestBytes);
        var eventCharge = Charge(eventBucket, events);
        var byteCharge = Charge(byteBucket, bytes);

        // Looking first keeps a refusal by one budget from spending the other; a race between two requests of the
        // same tenant can still spend one budget's permits on a refused request, which errs on the tenant's side.
        if (Available(byteBucket) < byteCharge)
        {
            return TryTake(byteBucket, byteCharge);
        }

        return TryTake(eventBucket, eventCharge) ?? TryTake(byteBucket, byteCharge);
    }

    /// <summary>
    /// Before an ingest body is read: refuses at once when the tenant's events budget is empty or its bytes budget
    /// cannot hold the declared body, so a flooding tenant's refused batches cost no parsing.
    /// </summary>
    public RateLimitRefusal? RefuseIngestEarly(Tenant tenant, long? contentLength)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var eventBucket = BucketOf(tenant, IngestEvents);
        if (Available(eventBucket) < 1)
        {
            return TryTake(eventBucket, 1);
        }

        var byteBucket = BucketOf(tenant, IngestBytes);
        return contentLength is { } length && Available(byteBucket) < Charge(byteBucket, length) ? TryTake(byteBucket, Charge(byteBucket, length)) : null;
    }

    /// <summary>Charges a read its cost in read-cost units.</summary>
    public RateLimitRefusal? TryAcquireReadCost(Tenant tenant, int cost)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var bucket = BucketOf(tenant, ReadCostPolicy);
        return TryTake(bucket, Charge(bucket, cost));
    }

    /// <summary>The tenant's effective limit of one policy: its override, else its edition's default.</summary>
    public int LimitOf(Tenant tenant, string policy)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var defaults = _options.Value.RateLimits.For(tenant.Edition);
        var settings = tenant.Settings;
        return policy switch
        {
            Ingest => settings.IngestPerSecond ?? defaults.IngestPerSecond,
            Query => settings.QueryPerSecond ?? defaults.QueryPerSecond,
            IngestEvents => settings.IngestEventsPerSecond ?? defaults.IngestEventsPerSecond,
            IngestBytes => settings.IngestBytesPerSecond ?? defaults.IngestBytesPerSecond,
            ReadCostPolicy => settings.ReadCostPerSecond ?? defaults.ReadCostPerSecond,
            _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "Unknown rate-limit policy."),
        };
    }

    /// <summary>The unit a policy counts, for the refusal's detail.</summary>
    public static string UnitOf(string policy) => policy switch
    {
        IngestEvents => "events",
        IngestBytes => "bytes",
        ReadCostPolicy => "read-cost units",
        _ => "requests",
    };

    private Bucket BucketOf(Tenant tenant, string policy)
    {
        var limit = LimitOf(tenant, policy);
        var ingestion = _options.Value.Ingestion;
        var largestCharge = policy switch
        {
            IngestEvents => ingestion.MaxEventsPerRequest,
            IngestBytes => ingestion.MaxRequestBytes,
            ReadCostPolicy => ReadCost.Largest,
            _ => 1,
        };
        return new Bucket(tenant.Id, policy, limit, Math.Max(limit, largestCharge));
    }

    // A charge above the bucket's capacity (a body over the configured maximum, refused later anyway) takes it all.
    private static int Charge(Bucket bucket, long amount) => (int)Math.Clamp(amount, 0, bucket.Capacity);

    private long Available(Bucket bucket) => _limiter.GetStatistics(bucket)?.CurrentAvailablePermits ?? bucket.Capacity;

    private RateLimitRefusal? TryTake(Bucket bucket, int permits)
    {
        using var lease = _limiter.AttemptAcquire(bucket, permits);
        if (lease.IsAcquired)
        {
            return null;
        }

        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
        return new RateLimitRefusal(bucket.Policy, bucket.Limit, 1, retryAfter);
    }

    public void Dispose() => _limiter.Dispose();

    private readonly record struct Bucket(string Tenant, string Policy, int Limit, int Capacity);
}

/// <summary>A 429: which policy refused (quota per window seconds) and when to come back.</summary>
internal sealed record RateLimitRefusal(string Policy, int Quota, int WindowSeconds, int RetryAfterSeconds)
{
    /// <summary>Retry-After plus the IETF RateLimit-Policy / RateLimit header fields, naming the policy that refused.</summary>
    public void WriteHeaders(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var retry = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        response.Headers.RetryAfter = retry;
        response.Headers["RateLimit-Policy"] = $"\"{Policy}\";q={Quota.ToString(CultureInfo.InvariantCulture)};w={WindowSeconds.ToString(CultureInfo.InvariantCulture)}";
        response.Headers["RateLimit"] = $"\"{Policy}\";r=0;t={retry}";
    }

    /// <summary>The problem's detail for a tenant limit.</summary>
    public string TenantDetail =>
        $"The tenant's {Policy} limit of {Quota.ToString(CultureInfo.InvariantCulture)} {TenantRateLimiter.UnitOf(Policy)} per second is used up; retry after {RetryAfterSeconds.ToString(CultureInfo.InvariantCulture)} s.";
}
