using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Export;

/// <summary>
/// Runs export jobs in the background, at most <see cref="ExportOptions.Workers"/> at a time on this node. A job writes
/// its output as numbered parts into its staging directory, each flushed to disk and renamed into place before the
/// job's state records it; after a crash or restart the job continues with the first part not recorded, and the parts
/// are joined into the finished file at the end. The same sweep expires jobs past their retention and deletes their files.
/// </summary>
internal sealed partial class ExportWorker(
    ExportJobStore jobs,
    ExportService service,
    ExportBundles bundles,
    ILogStore log,
    StoredLeafCheck leafCheck,
    PlatformAuditLog audit,
    ExportMetrics metrics,
    IOptions<ExportOptions> options,
    IOptions<AtpOptions> atpOptions,
    TimeProvider clock,
    ILogger<ExportWorker> logger) : QuietBackgroundService
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);

    /// <summary>Stops the job if this node runs it (the caller has already recorded it cancelled).</summary>
    public void Cancel(string jobId)
    {
        if (_running.TryGetValue(jobId, out var cancellation))
        {
            cancellation.Cancel();
        }
    }

    /// <summary>Whether this node is running the job now.</summary>
    public bool IsRunning(string jobId) => _running.ContainsKey(jobId);

    /// <summary>
    /// Fault injection for tests: awaited after each part is recorded (a stalled disk or a slow store, on purpose), so a
    /// test can hold a job in the running state however fast the machine is. Null in the product.
    /// </summary>
    internal Func<CancellationToken, Task>? AfterPart { get; set; }

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        service.Queued += Wake;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    Sweep(stoppingToken);
                    await bundles.RunDailyAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    LogSweepFailed(e);
                }

                // Real time paces the loop; decisions (expiry, the daily time) use the injected clock.
                await _wake.WaitAsync(options.Value.SweepInterval, stoppingToken).ConfigureAwait(false);
            }
        }
        finally
        {
            service.Queued -= Wake;
            foreach (var cancellation in _running.Values)
            {
                await cancellation.CancelAsync().ConfigureAwait(false);
            }
        }
    }

    private void Wake() => _wake.Release();

    private void Sweep(CancellationToken stoppingToken)
    {
        var now = clock.GetUtcNow();
        foreach (var job in jobs.ListAll())
        {
            if (job.State != ExportStates.Expired && now >= job.ExpiresAt)
            {
                Expire(job);
                continue;
            }

            if (ExportStates.IsActive(job.State) && !_running.ContainsKey(job.Id) && _running.Count < options.Value.Workers)
            {
                Start(job, stoppingToken);
            }
        }
    }

    private void Expire(ExportJob job)
    {
        Cancel(job.Id);
        if (jobs.Update(job.Tenant, job.Id, j => j.State == ExportStates.Expired ? null : j with { State = ExportStates.Expired, Error = j.Error }) is not null)
        {
            jobs.DeleteFiles(job);
            LogExpired(job.Id, job.Tenant);
        }
    }

    private void Start(ExportJob job, CancellationToken stoppingToken)
    {
        // A lock file held for the run keeps a second worker (another node sharing the directory) off the same job.
        FileStream held;
        try
        {
            held = new FileStream(Path.Combine(jobs.JobDirectory(job.Tenant, job.Id), "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return;
        }

        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        if (!_running.TryAdd(job.Id, cancellation))
        {
            held.Dispose();
            cancellation.Dispose();
            return;
        }

        _ = Task.Run(
            async () =>
            {
                try
                {
                    await RunJobAsync(job, cancellation.Token, stoppingToken).ConfigureAwait(false);
                }
                finally
                {
                    _running.TryRemove(job.Id, out _);
                    await held.DisposeAsync().ConfigureAwait(false);
                    cancellation.Dispose();
                    Wake();
                }
            },
            CancellationToken.None);
    }

    private async Task RunJobAsync(ExportJob queued, CancellationToken cancellationToken, CancellationToken stoppingToken)
    {
        var job = jobs.Update(queued.Tenant, queued.Id, j => ExportStates.IsActive(j.State)
            ? j with { State = ExportStates.Running, StartedAt = j.StartedAt ?? clock.GetUtcNow(), Runs = j.Runs + 1, RunStarts = [.. j.RunStarts, j.PartsDone] }
            : null);
        if (job is null)
        {
            return;
        }

        LogStarted(job.Id, job.Tenant, job.Runs, job.PartsDone);
        try
        {
            var finished = job.Format == ExportFormats.Ndjson
                ? await bundles.RunJobAsync(job, Progress, cancellationToken).ConfigureAwait(false)
                : await RunLinesAsync(job, cancellationToken).ConfigureAwait(false);
            var done = jobs.Update(job.Tenant, job.Id, j => j.State == ExportStates.Running
                ? j with { State = ExportStates.Succeeded, Sha256 = finished.Sha256, Bytes = finished.Bytes, Events = finished.Events, FinishedAt = clock.GetUtcNow() }
                : null);
            if (done is not null)
            {
                if (Directory.Exists(jobs.StagingDirectory(done)))
                {
                    Directory.Delete(jobs.StagingDirectory(done), recursive: true);
                }

                LogSucceeded(done.Id, done.Tenant, done.Events, done.Bytes);
                metrics.JobEnded(done.Format, ExportStates.Succeeded, done.Bytes);
                await RecordAsync(done, "export.succeeded", EventOutcome.Success, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // Cancelled or expired by a request or the sweep (on this node or another), which recorded the state; the files go.
            if (jobs.Find(job.Tenant, job.Id) is { } current)
            {
                jobs.DeleteFiles(current);
                metrics.JobEnded(current.Format, current.State, 0);
            }
        }
        catch (ExportFailedException e)
        {
            await FailAsync(job, e.Message, stoppingToken).ConfigureAwait(false);
        }
        catch (Core.Export.EntryPurgedException e)
        {
            await FailAsync(job, e.Message, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StoreUnavailableException or InvalidOperationException)
        {
            LogJobError(e, job.Id, job.Tenant);
            await FailAsync(job, "The export could not be written (" + e.GetType().Name + "); the server's log has the details.", stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task FailAsync(ExportJob job, string reason, CancellationToken cancellationToken)
    {
        var failed = jobs.Update(job.Tenant, job.Id, j => ExportStates.IsActive(j.State)
            ? j with { State = ExportStates.Failed, Error = reason, FinishedAt = clock.GetUtcNow() }
            : null);
        if (failed is not null)
        {
            jobs.DeleteFiles(failed);
            LogFailed(failed.Id, failed.Tenant, reason);
            metrics.JobEnded(failed.Format, ExportStates.Failed, failed.Bytes);
            await RecordAsync(failed, "export.failed", EventOutcome.Failure, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Records a part as done (the state file is the only record of progress a restart reads).</summary>
    private ExportJob Progress(ExportJob job, int partsDone, ulong nextIndex, ulong events, long bytes)
    {
        if (bytes > job.MaxBytes)
        {
            throw new ExportFailedException($"The export grew past exportJobMaxBytes ({job.MaxBytes} bytes) after {events} events; it was stopped.");
        }

        return jobs.Update(job.Tenant, job.Id, j => j.State == ExportStates.Running
            ? j with { PartsDone = partsDone, NextIndex = nextIndex, Events = events, Bytes = bytes }
            : null) ?? throw new OperationCanceledException("The job is no longer running.");
    }

    private async Task<FinishedExport> RunLinesAsync(ExportJob job, CancellationToken cancellationToken)
    {
        var part = options.Value.EntriesPerPart;
        var staging = jobs.StagingDirectory(job);
        Directory.CreateDirectory(staging);
        var lines = new ExportLines(job.Format, atpOptions.Value.TenantOrigin(job.Tenant), atpOptions.Value.Region);
        List<ulong>? matches = null;
        if (!job.IsComplete)
        {
            var (query, errors) = ExportService.ParseFilters(job.Tenant, job.Filters!.Value);
            if (query is null)
            {
                throw new ExportFailedException("The job's filters are no longer valid: " + string.Join("; ", errors));
            }

            matches = await service.MatchesAsync(query, job.FromIndex, job.ToIndex, cancellationToken).ConfigureAwait(false);
        }

        var total = matches is null ? job.ToIndex - job.FromIndex : (ulong)matches.Count;
        var parts = (int)((total + (ulong)part - 1) / (ulong)part);
        var events = job.Events;
        var bytes = job.Bytes;
        var buffer = new ArrayBufferWriter<byte>(1 << 20);
        for (var number = job.PartsDone; number < parts; number++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var first = (ulong)number * (ulong)part;
            var count = (int)Math.Min((ulong)part, total - first);
            var path = Path.Combine(staging, PartName(number));
            await using (var file = new FileStream(path + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var written = 0;
                await foreach (var entry in EntriesAsync(job, matches, first, count, cancellationToken).ConfigureAwait(false))
                {
                    // Purged by retention: no content is left to export (a line export carries no proof, so nothing is lost).
                    if (entry.PurgedBy is not null)
                    {
                        continue;
                    }

                    if (!leafCheck.IsIntact(job.Tenant, entry))
                    {
                        throw new ExportFailedException($"Entry {entry.Index} failed its leaf hash (integrity-failure); the export was stopped rather than carry altered bytes.");
                    }

                    lines.Write(entry, buffer);
                    written++;
                    if (buffer.WrittenCount >= 1 << 20)
                    {
                        await file.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
                        bytes += buffer.WrittenCount;
                        buffer.ResetWrittenCount();
                        if (bytes > job.MaxBytes)
                        {
                            throw new ExportFailedException($"The export grew past exportJobMaxBytes ({job.MaxBytes} bytes) after {events + (ulong)written} events; it was stopped.");
                        }
                    }
                }

                await file.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
                bytes += buffer.WrittenCount;
                buffer.ResetWrittenCount();
                file.Flush(flushToDisk: true);
                events += (ulong)written;
            }

            File.Move(path + ".tmp", path, overwrite: true);
            job = Progress(job, number + 1, matches is null ? job.FromIndex + first + (ulong)count : first + (ulong)count, events, bytes);
            if (AfterPart is { } afterPart)
            {
                await afterPart(cancellationToken).ConfigureAwait(false);
            }
        }

        return await JoinAsync(job, parts, events, cancellationToken).ConfigureAwait(false);
    }

    // The parts, in order, into the finished file (CSV gets its header first); hashed on the way.
    private async Task<FinishedExport> JoinAsync(ExportJob job, int parts, ulong events, CancellationToken cancellationToken)
    {
        var output = jobs.OutputPath(job);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        await using (var file = new FileStream(output + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            if (job.Format == ExportFormats.Csv)
            {
                await file.WriteAsync(ExportLines.CsvHeader, cancellationToken).ConfigureAwait(false);
                sha.AppendData(ExportLines.CsvHeader);
                size += ExportLines.CsvHeader.Length;
            }

            var chunk = new byte[1 << 16];
            for (var number = 0; number < parts; number++)
            {
                await using var part = new FileStream(Path.Combine(jobs.StagingDirectory(job), PartName(number)), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                int read;
                while ((read = await part.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await file.WriteAsync(chunk.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    sha.AppendData(chunk, 0, read);
                    size += read;
                }
            }

            file.Flush(flushToDisk: true);
        }

        File.Move(output + ".tmp", output, overwrite: true);
        return new FinishedExport(Convert.ToHexStringLower(sha.GetHashAndReset()), size, events);
    }

    private async IAsyncEnumerable<LogEntry> EntriesAsync(ExportJob job, List<ulong>? matches, ulong first, int count, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (matches is not null)
        {
            for (var i = 0; i < count; i++)
            {
                var index = matches[(int)first + i];
                yield return await log.GetEntryAsync(job.Tenant, index, cancellationToken).ConfigureAwait(false)
                    ?? throw new ExportFailedException($"Entry {index} is missing from the log.");
            }

            yield break;
        }

        var next = job.FromIndex + first;
        var end = next + (ulong)count;
        while (next < end)
        {
            var batch = await log.ListEntriesAsync(job.Tenant, next, (int)Math.Min((ulong)options.Value.BatchSize, end - next), cancellationToken).ConfigureAwait(false);
            if (batch.Count == 0)
            {
                throw new ExportFailedException($"Entry {next} is missing from the log.");
            }

            foreach (var entry in batch)
            {
                if (entry.Index != next)
                {
                    throw new ExportFailedException($"Entry {next} is missing from the log.");
                }

                next++;
                yield return entry;
            }
        }
    }

    public static string PartName(int number) => $"part-{number:D6}";

    private Task RecordAsync(ExportJob job, string action, string outcome, CancellationToken cancellationToken) =>
        audit.RecordAsync(new PlatformEvent(PlatformEvents.AdminType, action, new Party(job.ActorType, job.ActorId, null), job.Tenant, outcome, null, AuditData(job)), cancellationToken);

    /// <summary>What the platform log records of a job: which, what range and format, how big, its hash or why it failed.</summary>
    public static Dictionary<string, string> AuditData(ExportJob job)
    {
        var data = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["exportId"] = job.Id,
            ["format"] = job.Format,
            ["fromIndex"] = job.FromIndex.ToString(CultureInfo.InvariantCulture),
            ["toIndex"] = job.ToIndex.ToString(CultureInfo.InvariantCulture),
            ["treeSize"] = job.CheckpointSize.ToString(CultureInfo.InvariantCulture),
            ["filters"] = job.Filters?.GetRawText() ?? "none",
            ["events"] = job.Events.ToString(CultureInfo.InvariantCulture),
            ["bytes"] = job.Bytes.ToString(CultureInfo.InvariantCulture),
        };
        if (job.Sha256 is not null)
        {
            data["sha256"] = job.Sha256;
        }

        if (job.Error is not null)
        {
            data["error"] = job.Error;
        }

        return data;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Export {JobId} of tenant {Tenant} started (run {Run}, {PartsDone} parts already done)")]
    private partial void LogStarted(string jobId, string tenant, int run, int partsDone);

    [LoggerMessage(Level = LogLevel.Information, Message = "Export {JobId} of tenant {Tenant} succeeded: {Events} events, {Bytes} bytes")]
    private partial void LogSucceeded(string jobId, string tenant, ulong events, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Export {JobId} of tenant {Tenant} failed: {Reason}")]
    private partial void LogFailed(string jobId, string tenant, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Export {JobId} of tenant {Tenant} could not be written")]
    private partial void LogJobError(Exception exception, string jobId, string tenant);

    [LoggerMessage(Level = LogLevel.Information, Message = "Export {JobId} of tenant {Tenant} expired; its files were deleted")]
    private partial void LogExpired(string jobId, string tenant);

    [LoggerMessage(Level = LogLevel.Error, Message = "The export sweep failed; it runs again at its next interval")]
    private partial void LogSweepFailed(Exception exception);
}

/// <summary>A job's finished file: its SHA-256 (lowercase hex), size and events.</summary>
internal sealed record FinishedExport(string Sha256, long Bytes, ulong Events);

/// <summary>A job cannot complete for a reason its owner should read (the state's error).</summary>
internal sealed class ExportFailedException(string message) : Exception(message);

/// <summary>Records one finished part of a job and returns its new state (throws when the job may not go on).</summary>
internal delegate ExportJob ExportProgress(ExportJob job, int partsDone, ulong nextIndex, ulong events, long bytes);
