using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Storage;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>
/// Signs a C2SP checkpoint for every tenant log that grew, once per <see cref="IntegrityOptions.CheckpointInterval"/>,
/// and forgets Idempotency-Keys past their retention. Checkpoints only ever cover committed (durable) tree heads.
/// Retention is measured with an <see cref="AnchoredClock"/>, so a wall-clock jump cannot forget a key early.
/// </summary>
internal sealed partial class CheckpointSealer(
    ILogStore store,
    ITenantStore tenants,
    LogQuarantine quarantine,
    ISigningKeyProvider keys,
    SigningKeyRotation rotation,
    IntegrityMetrics signatures,
    PublishedHeads published,
    IOptions<AtpOptions> options,
    StorageEngine engine,
    TimeProvider clock,
    Telemetry.AtpMetrics metrics,
    ILogger<CheckpointSealer> logger) : QuietBackgroundService
{
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(10);
    private readonly AnchoredClock _keyClock = new(clock);
    private long _lastSuccessTicks;
    private long _lastSuccessTimestamp;

    /// <summary>When the last pass completed, for the readiness probe.</summary>
    public DateTimeOffset? LastSuccess => Interlocked.Read(ref _lastSuccessTicks) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    public TimeSpan Interval => options.Value.Integrity.CheckpointInterval;

    /// <summary>How long ago the last pass completed, on the monotonic clock (a wall-clock jump changes nothing); null before the first.</summary>
    public TimeSpan? SinceLastSuccess => Interlocked.Read(ref _lastSuccessTimestamp) is var t and > 0 ? clock.GetElapsedTime(t) : null;

    /// <summary>One pass: sign every unsealed log. Public for tests and for an immediate seal at start.</summary>
    public async Task<int> SealAsync(CancellationToken cancellationToken)
    {
        await RetireDueKeyAsync(cancellationToken).ConfigureAwait(false);
        var unsealed = await store.ListUnsealedAsync(cancellationToken).ConfigureAwait(false);
        var signable = new List<UnsealedLog>(unsealed.Count);
        foreach (var log in unsealed)
        {
            // Nothing is signed for a quarantined log until an operator repairs the store and restarts.
            if (quarantine.Contains(log.TenantId))
            {
                continue;
            }

            // A replica's checkpoints are the source cell's, stored by atp import; this cell never signs its log.
            if (await tenants.GetTenantAsync(log.TenantId, cancellationToken).ConfigureAwait(false) is { IsReplica: true })
            {
                continue;
            }

            // Never sign for a tree that is behind, or not a continuation of, the head this cell last published (a
            // store rolled back under a running node, e.g. a PostgreSQL point-in-time recovery); checked at start too.
            if (published.Find(log.TenantId) is { } last && await RolledBackAsync(log, last, cancellationToken).ConfigureAwait(false) is { } rollback)
            {
                quarantine.Add(new QuarantinedLog(log.TenantId, TreeStateCheck.Rollback, rollback));
                continue;
            }

            signable.Add(log);
        }

        // Rollback detection: the heads about to be signed are recorded (one write, one fsync for the whole pass) before
        // any of their checkpoints is stored and served; a head that grew since it was listed is recorded on its own.
        published.Record([.. signable.Select(l => (l.TenantId, l.Head))]);
        foreach (var batch in signable.Chunk(options.Value.Integrity.SealBatchSize))
        {
            // One durable transaction per batch, not per log: the commit (an fsync) was the cost of a pass with many
            // grown logs. The heads are read again by the store, under its sealer locks when it has them (the listed
            // heads may be stale), and each is checked and signed on its own; a crash keeps a batch's old checkpoints.
            await store.SealManyAsync([.. batch.Select(l => l.TenantId)], SignCheckedAsync, clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }

        Interlocked.Exchange(ref _lastSuccessTicks, clock.GetUtcNow().UtcTicks);
        Interlocked.Exchange(ref _lastSuccessTimestamp, Math.Max(1, clock.GetTimestamp()));
        return unsealed.Count;
    }

    // The common cases cost nothing: a head at the published size is compared by root; only a head that grew past it
    // has the root at the published size recomputed from the stored nodes.
    private async Task<string?> RolledBackAsync(UnsealedLog log, TreeHead last, CancellationToken cancellationToken) =>
        log.Head.Size < last.Size ? $"the stored tree has {log.Head.Size} entries but this cell already published a checkpoint for {last.Size}"
        : log.Head.Size == last.Size ? (log.Head.Root == last.Root ? null : $"the stored tree's root at size {last.Size} differs from the root this cell published for that size")
        : await RollbackCheck.CheckAsync(store, log.TenantId, last, cancellationToken).ConfigureAwait(false);

    // Never sign a fork: the head must be provably consistent with the tenant's last signed checkpoint (SignableHead);
    // a head that is not quarantines the log instead of being signed.
    private async Task<string?> SignCheckedAsync(string tenantId, TreeHead head, CancellationToken cancellationToken)
    {
        // Never sign a tree smaller than one this cell already published (a store rolled back under the server).
        if (published.Find(tenantId) is { } last && head.Size < last.Size)
        {
            quarantine.Add(new QuarantinedLog(tenantId, TreeStateCheck.Rollback, $"the stored tree has {head.Size} entries but this cell already published a checkpoint for {last.Size}"));
            return null;
        }

        var check = await SignableHead.CheckAsync(store, tenantId, head, keys.Verifiers, cancellationToken).ConfigureAwait(false);
        if (!check.IsValid)
        {
            quarantine.Add(new QuarantinedLog(tenantId, TreeStateCheck.Seal, check.Failure!));
            return null;
        }

        if (published.Find(tenantId) is not { } recorded || recorded.Size < head.Size)
        {
            published.Record([(tenantId, head)]);
        }

        // During a rotation's overlap both keys sign, so a verifier holding either key accepts the checkpoint.
        var signers = keys.Signers;
        var signed = new Checkpoint(options.Value.TenantOrigin(tenantId), head.Size, head.Root).Sign([.. signers]).ToString();
        foreach (var signer in signers)
        {
            signatures.Signed(signer);
        }

        metrics.Sealed(1);
        return signed;
    }

    // A key whose overlap ended stops signing before this pass signs anything. Failing to record that (the keyring or
    // the platform log cannot be written) must not stop sealing: the old key keeps signing and the next pass retries.
    private async Task RetireDueKeyAsync(CancellationToken cancellationToken)
    {
        try
        {
            await rotation.RetireDueAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            LogRetireFailed(logger, e);
        }
    }

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        metrics.SealerLag = () => SinceLastSuccess;
        using var timer = new PeriodicTimer(Interval, clock);
        long? lastPrune = null; // a monotonic timestamp: a wall-clock jump neither hurries nor delays the next prune
        do
        {
            try
            {
                var sealedLogs = await SealAsync(stoppingToken).ConfigureAwait(false);
                if (sealedLogs > 0)
                {
                    LogSealed(logger, sealedLogs);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException && engine.Space.TryMarkFull(e, "sealing checkpoints"))
            {
                // Logged once by the store's space state; readiness is down while the disk is full.
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Keep sealing on the next tick; readiness turns red when passes keep failing.
                LogSealFailed(logger, e);
            }

            // On its own: a failing seal pass must not keep expired Idempotency-Keys forever.
            if (lastPrune is not { } last || clock.GetElapsedTime(last) >= PruneEvery)
            {
                try
                {
                    // The interval runs from the reading the cutoff is taken from, not from the end of the prune: time
                    // that passes while a prune runs (a stalled store, a paused VM) counts towards the next one, so a key
                    // that expires meanwhile is not kept up to a whole extra interval.
                    var pruneStarted = clock.GetTimestamp();
                    var pruned = await store.PruneIdempotencyKeysAsync(_keyClock.Earliest() - options.Value.Ingestion.IdempotencyRetention, stoppingToken).ConfigureAwait(false);
                    lastPrune = pruneStarted;
                    if (pruned > 0)
                    {
                        LogPruned(logger, pruned);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException && engine.Space.TryMarkFull(e, "pruning Idempotency-Keys"))
                {
                    // Logged once by the store's space state.
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogPruneFailed(logger, e);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Signed checkpoints for {Logs} logs")]
    private static partial void LogSealed(ILogger logger, int logs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Retiring the signing key whose rotation overlap ended failed; it keeps signing and the next pass retries")]
    private static partial void LogRetireFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Forgot {Keys} expired Idempotency-Keys")]
    private static partial void LogPruned(ILogger logger, int keys);

    [LoggerMessage(Level = LogLevel.Error, Message = "Checkpoint sealing pass failed")]
    private static partial void LogSealFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Pruning expired Idempotency-Keys failed; retried on the next pass")]
    private static partial void LogPruneFailed(ILogger logger, Exception exception);
}
