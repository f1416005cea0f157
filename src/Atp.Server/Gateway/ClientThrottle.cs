using System.Threading.RateLimiting;
using Atp.Server.Audit;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// Per-client-IP limits in front of everything: requests without a verified credential are limited per second, and an
/// address whose requests keep being refused (401/403) or whose credentials do not verify is shut out with 429 until
/// its failure budget refills — credential guessing and tenant probing get slow and loud. Health probes are exempt:
/// a load balancer behind the same address as a guesser must still see the node live and ready.
/// </summary>
internal sealed class ClientThrottle : IMiddleware, IDisposable
{
    private readonly PartitionedRateLimiter<string> _anonymous;
    private readonly PartitionedRateLimiter<string> _failures;
    private readonly RateLimitOptions _limits;
    private readonly PlatformAuditLog _audit;

    public ClientThrottle(IOptions<AtpOptions> options, PlatformAuditLog audit)
    {
        ArgumentNullException.ThrowIfNull(options);
        _limits = options.Value.RateLimits;
        _audit = audit;
        var anonymous = _limits.AnonymousPerIpPerSecond;
        var failures = _limits.FailuresPerIpPerMinute;
        _anonymous = PartitionedRateLimiter.Create<string, string>(ip => RateLimitPartition.GetTokenBucketLimiter(ip, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = anonymous,
            TokensPerPeriod = anonymous,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
        }));
        _failures = PartitionedRateLimiter.Create<string, string>(ip => RateLimitPartition.GetFixedWindowLimiter(ip, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = failures,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        if (IsHealthProbe(context.Request))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var ip = PlatformEvents.ClientIp(context);

        // Asking for zero permits tells whether any are left without using one.
        using (var probe = _failures.AttemptAcquire(ip, 0))
        {
            if (!probe.IsAcquired)
            {
                await RefuseAsync(context, new RateLimitRefusal("ip-failures", _limits.FailuresPerIpPerMinute, 60, RetryAfter(probe, 60)), "Too many refused requests from this address").ConfigureAwait(false);
                return;
            }
        }

        // Only a credential that verified escapes the anonymous limit: a garbage Authorization header is anonymous
        // and a failure. Authenticating here is not done twice: the handlers keep their result for the request.
        var hasCredential = context.Request.Headers.Authorization.Count > 0 || context.Request.Headers.ContainsKey("Signature-Input");
        var authenticated = hasCredential && (await context.AuthenticateAsync().ConfigureAwait(false)).Succeeded;
        var failureCounted = false;
        if (hasCredential && !authenticated)
        {
            _failures.AttemptAcquire(ip).Dispose();
            failureCounted = true;
        }

        if (!authenticated)
        {
            using var lease = _anonymous.AttemptAcquire(ip);
            if (!lease.IsAcquired)
            {
                await RefuseAsync(context, new RateLimitRefusal("ip-anonymous", _limits.AnonymousPerIpPerSecond, 1, RetryAfter(lease, 1)), "Too many requests without a valid credential from this address").ConfigureAwait(false);
                return;
            }
        }

        await next(context).ConfigureAwait(false);
        if (!failureCounted && context.Response.StatusCode is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden)
        {
            _failures.AttemptAcquire(ip).Dispose();
        }
    }

    /// <summary>Liveness and readiness probes (GET or HEAD), which no per-IP limit may refuse.</summary>
    public static bool IsHealthProbe(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
            && (request.Path.Equals("/livez", StringComparison.OrdinalIgnoreCase)
            || request.Path.Equals("/readyz", StringComparison.OrdinalIgnoreCase)
            || request.Path.Equals("/healthz", StringComparison.OrdinalIgnoreCase));
    }

    private static int RetryAfter(RateLimitLease lease, int fallback) =>
        lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : fallback;

    private async Task RefuseAsync(HttpContext context, RateLimitRefusal refusal, string detail)
    {
        _audit.ReportRateLimited(context, null, refusal.Policy);
        refusal.WriteHeaders(context.Response);
        await Problem.RateLimited($"{detail}; retry after {refusal.RetryAfterSeconds} s.").ExecuteAsync(context).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _anonymous.Dispose();
        _failures.Dispose();
    }
}
