using System.Globalization;
using System.Threading.RateLimiting;
using Atp.Core.Tenants;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// Requests per second per tenant and kind (ingest: writes; query: reads), from the tenant's override or its
/// edition's default. A token bucket per (tenant, kind, limit): a changed limit starts a fresh bucket at once.
/// </summary>
internal sealed class TenantRateLimiter(IOptions<AtpOptions> options) : IDisposable
{
    public const string Ingest = "ingest";
    public const string Query = "query";

    private readonly PartitionedRateLimiter<(string Tenant, string Kind, int Limit)> _limiter =
        PartitionedRateLimiter.Create<(string Tenant, string Kind, int Limit), (string Tenant, string Kind, int Limit)>(
            key => RateLimitPartition.GetTokenBucketLimiter(key, k => new TokenBucketRateLimiterOptions
            {
                TokenLimit = k.Limit,
                TokensPerPeriod = k.Limit,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));

    /// <summary>Takes one request from the tenant's bucket; null when allowed, else the refusal to send.</summary>
    public RateLimitRefusal? TryAcquire(Tenant tenant, string kind)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var limit = LimitOf(tenant, kind);
        using var lease = _limiter.AttemptAcquire((tenant.Id, kind, limit));
        if (lease.IsAcquired)
        {
            return null;
        }

        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
        return new RateLimitRefusal(kind, limit, 1, retryAfter);
    }

    public int LimitOf(Tenant tenant, string kind)
    {
        var defaults = options.Value.RateLimits.For(tenant.Edition);
        return kind == Ingest
            ? tenant.Settings.IngestPerSecond ?? defaults.IngestPerSecond
            : tenant.Settings.QueryPerSecond ?? defaults.QueryPerSecond;
    }

    public void Dispose() => _limiter.Dispose();
}

/// <summary>A 429: which policy refused (quota per window seconds) and when to come back.</summary>
internal sealed record RateLimitRefusal(string Policy, int Quota, int WindowSeconds, int RetryAfterSeconds)
{
    /// <summary>Retry-After plus the IETF RateLimit-Policy / RateLimit header fields.</summary>
    public void WriteHeaders(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var retry = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        response.Headers.RetryAfter = retry;
        response.Headers["RateLimit-Policy"] = $"\"{Policy}\";q={Quota.ToString(CultureInfo.InvariantCulture)};w={WindowSeconds.ToString(CultureInfo.InvariantCulture)}";
        response.Headers["RateLimit"] = $"\"{Policy}\";r=0;t={retry}";
    }
}
