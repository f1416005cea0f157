using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Microsoft.Extensions.Options;

namespace Atp.Server.Audit;

/// <summary>
/// The platform audit log: an ATP log like any tenant's (reserved tenant <see cref="TenantId"/>), so the platform's
/// own administration and the refusals at its front door are tamper-evident and provable with the same checkpoints
/// and proofs. Administrative actions are appended before the call returns; refusals are queued and appended in
/// batches, so a flood of bad requests costs the hot path one channel write each.
/// </summary>
internal sealed partial class PlatformAuditLog(
    IngestionService ingestion,
    ITenantStore tenants,
    AlertDetector detector,
    IOptions<AtpOptions> options,
    TimeProvider clock,
    Telemetry.AtpMetrics metrics,
    ILogger<PlatformAuditLog> logger) : QuietBackgroundService
{
    /// <summary>The reserved tenant holding the platform log; no one can create a tenant with this id.</summary>
    public const string TenantId = "atp-platform";

    private const int MaxBatch = 200;
    private readonly Channel<PlatformEvent> _queue = Channel.CreateBounded<PlatformEvent>(
        new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    private long _dropped;

    /// <summary>Creates the platform log's tenant on first start, homed in this cell.</summary>
    public async Task EnsureTenantAsync(CancellationToken cancellationToken)
    {
        if (await tenants.GetTenantAsync(TenantId, cancellationToken).ConfigureAwait(false) is null)
        {
            var region = options.Value.Region;
            await tenants.TryCreateTenantAsync(
                new Tenant(TenantId, "ATP platform audit log", Tenant.EnterpriseEdition, region, new Residency(Residency.Strict, []), Tenant.Active, clock.GetUtcNow()),
                cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Appends an administrative action durably before returning.</summary>
    public async Task RecordAsync(PlatformEvent platformEvent, CancellationToken cancellationToken)
    {
        var outcome = await ingestion.AppendAsync(TenantId, [ToDraft(platformEvent)], null, cancellationToken).ConfigureAwait(false);
        if (outcome is not Appended)
        {
            throw new InvalidOperationException($"The platform audit log refused an entry: {outcome.GetType().Name}.");
        }
    }

    /// <summary>Queues a security event (and any alert it completes); never blocks the request.</summary>
    public void Report(PlatformEvent platformEvent)
    {
        ArgumentNullException.ThrowIfNull(platformEvent);
        if (platformEvent.Type == PlatformEvents.SecurityType && platformEvent.Action != PlatformEvents.RateLimited)
        {
            metrics.Refused(platformEvent.Action);
        }

        Enqueue(platformEvent);
        if (detector.Observe(platformEvent) is { } alert)
        {
            Enqueue(alert);
        }
    }

    /// <summary>
    /// Records a rate-limit refusal once per tenant, kind and minute: a client hammering at its limit must not turn
    /// the platform log into a copy of its traffic.
    /// </summary>
    public void ReportRateLimited(HttpContext context, string? tenantId, string kind)
    {
        metrics.RateLimited(kind);
        var minute = clock.GetUtcNow().ToUnixTimeSeconds() / 60;
        var key = $"{tenantId ?? PlatformEvents.ClientIp(context)}/{kind}";
        if (_rateLimitReported.TryGetValue(key, out var last) && last == minute)
        {
            return;
        }

        _rateLimitReported[key] = minute;
        if (_rateLimitReported.Count > 100_000)
        {
            _rateLimitReported.Clear();
        }

        Report(PlatformEvents.Refusal(context, PlatformEvents.RateLimited, tenantId, $"{kind} rate limit reached (further refusals this minute are not recorded)"));
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _rateLimitReported = new(StringComparer.Ordinal);

    /// <summary>Security events dropped because the queue was full (the log stays consistent; drops are logged as warnings).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    private void Enqueue(PlatformEvent platformEvent)
    {
        if (!_queue.Writer.TryWrite(platformEvent))
        {
            // Logged on the first drop and every 1,000th after, so a flood cannot also flood the log.
            var dropped = Interlocked.Increment(ref _dropped);
            if (dropped % 1000 == 1)
            {
                LogDropped(logger, dropped);
            }
        }
    }

    /// <summary>Waits until every event queued so far is appended (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _inFlight) > 0)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    private int _inFlight;

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var batch = new List<EventDraft>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
        {
            Volatile.Write(ref _inFlight, 1);
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
            {
                batch.Add(ToDraft(next));
            }

            try
            {
                await ingestion.AppendAsync(TenantId, batch, null, stoppingToken).ConfigureAwait(false);
            }
            catch (StorageFullException)
            {
                // The full disk is logged once by the store; these events are lost like any refused append.
                LogDroppedForSpace(logger, batch.Count);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogAppendFailed(logger, batch.Count, e);
            }
            finally
            {
                batch.Clear();
                Volatile.Write(ref _inFlight, 0);
            }
        }
    }

    private EventDraft ToDraft(PlatformEvent e)
    {
        // Held to the rules of tenant events: an entry the read models cannot index must not reach this log either.
        IReadOnlyList<Party> targets = e.TenantId is null ? [] : [PlatformEventText.Party(new Party("tenant", e.TenantId, null))];
        var data = e.Data is null ? (JsonElement?)null : JsonSerializer.SerializeToElement(PlatformEventText.Data(e.Data), PlatformJson.Default.IReadOnlyDictionaryStringString);
        return new EventDraft(null, e.Type, clock.GetUtcNow(), PlatformEventText.Party(e.Actor), e.Action, targets, e.Outcome, PlatformEventText.Context(e.Context), data);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The platform audit log queue is full; {Dropped} security events dropped so far")]
    private static partial void LogDropped(ILogger logger, long dropped);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Count} security events were not appended to the platform audit log: the store's disk is full")]
    private static partial void LogDroppedForSpace(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not append {Count} security events to the platform audit log")]
    private static partial void LogAppendFailed(ILogger logger, int count, Exception exception);
}

[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
internal sealed partial class PlatformJson : JsonSerializerContext;
