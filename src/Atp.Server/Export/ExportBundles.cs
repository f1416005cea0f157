using System.Formats.Tar;
using System.Globalization;
using System.Security.Cryptography;
using Atp.Core.Export;
using Atp.Core.Storage;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Export;

/// <summary>
/// Signed ndjson bundles (format atp-bundle/1, written by <see cref="BundleWriter"/>): the jobs of format ndjson, and
/// the daily bundles of <see cref="DailyExportOptions"/>. Both stage one entries file at a time, so a crash costs at
/// most the file being written.
/// </summary>
internal sealed partial class ExportBundles(
    ILogStore log,
    ISigningKeyProvider keys,
    ExportJobStore jobs,
    ExportService service,
    ExportMetrics metrics,
    IntegrityMetrics signatures,
    IOptions<ExportOptions> options,
    TimeProvider clock,
    ILogger<ExportBundles> logger)
{
    private const string PartialSuffix = ".partial";

    /// <summary>
    /// Runs (or resumes) an ndjson job: the plan is rebuilt from the job's pinned state (range, checkpoint, filters,
    /// creation time), so a resumed job stages the same files and packs the same bytes; staged files are kept.
    /// </summary>
    public async Task<FinishedExport> RunJobAsync(ExportJob job, ExportProgress progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(progress);
        List<ulong>? indexes = null;
        if (!job.IsComplete)
        {
            var (query, errors) = ExportService.ParseFilters(job.Tenant, job.Filters!.Value);
            if (query is null)
            {
                throw new ExportFailedException("The job's filters are no longer valid: " + string.Join("; ", errors));
            }

            indexes = await service.MatchesAsync(query, job.FromIndex, job.ToIndex, cancellationToken).ConfigureAwait(false);
        }

        // A complete bundle that starts after index 0 continues the tree of size FromIndex: its manifest carries that
        // tree's root and the consistency proof to its checkpoint, so `atp verify bundle --previous` can chain it to
        // the bundle that ended there.
        ulong? previousSize = indexes is null && job.FromIndex > 0 ? job.FromIndex : null;
        var plan = new BundlePlan(job.Tenant, job.FromIndex, job.ToIndex, job.CheckpointSize, previousSize, indexes, job.Filters, job.CreatedAt, job.Id);
        var writer = new BundleWriter(log, clock);
        var staging = jobs.StagingDirectory(job);
        Directory.CreateDirectory(staging);
        try
        {
            plan.Validate();
            for (var number = BundleWriter.FirstUnwrittenFile(plan, staging); number < plan.FileCount; number++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await writer.WriteEntriesFileAsync(plan, number, staging, cancellationToken).ConfigureAwait(false);
                var events = (ulong)Enumerable.Range(0, number + 1).Sum(n => (long)plan.CountOf(n));
                var next = plan.Indexes is null ? plan.From + events : events;
                job = progress(job, number + 1, next, events, StagedBytes(staging));
            }

            var output = jobs.OutputPath(job);
            await PackAsync(writer, plan, staging, output, cancellationToken).ConfigureAwait(false);
            var (size, sha256) = await DigestAsync(output, cancellationToken).ConfigureAwait(false);
            if (size > job.MaxBytes)
            {
                throw new ExportFailedException($"The bundle is {size} bytes, more than exportJobMaxBytes ({job.MaxBytes}); it was deleted.");
            }

            return new FinishedExport(sha256, size, plan.Events);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // The writer refuses a bundle that would not verify (a leaf or root that does not match), or a plan the log cannot fill.
            throw new ExportFailedException("The bundle cannot be written: " + e.Message);
        }
    }

    /// <summary>
    /// Once a day after <see cref="DailyExportOptions.Time"/> (UTC, by the injected clock): a bundle per tenant whose
    /// log grew since its last daily bundle, continuing where that one ended and carrying its consistency proof.
    /// </summary>
    public async Task RunDailyAsync(CancellationToken cancellationToken)
    {
        var daily = options.Value.Daily;
        var now = clock.GetUtcNow();
        if (!daily.Enabled || now.TimeOfDay < daily.Time)
        {
            return;
        }

        var day = now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        foreach (var size in await log.ListLogSizesAsync(cancellationToken).ConfigureAwait(false))
        {
            var directory = Path.Combine(jobs.Root, "daily", size.TenantId);
            var path = Path.Combine(directory, day + ".tar");
            if (File.Exists(path))
            {
                continue;
            }

            var previous = LatestBundle(directory);
            var from = previous?.TreeSize ?? 0;
            if (size.Size <= from)
            {
                continue;
            }

            try
            {
                await WriteDailyAsync(size.TenantId, from, previous is null ? null : from, directory, day, path, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException)
            {
                LogDailyFailed(e, size.TenantId, day);
                metrics.Daily("failed");
            }
        }
    }

    private async Task WriteDailyAsync(string tenant, ulong from, ulong? previousSize, string directory, string day, string path, CancellationToken cancellationToken)
    {
        var writer = new BundleWriter(log, clock);
        if (await writer.PlanCompleteAsync(tenant, from, null, previousSize, null, cancellationToken).ConfigureAwait(false) is not { } plan || plan.TreeSize <= from)
        {
            // Grown, but not signed beyond the last bundle yet: the next sweep looks again.
            return;
        }

        var staging = Path.Combine(directory, ".staging-" + day);
        Directory.CreateDirectory(staging);
        var signer = keys.Current;
        await writer.WriteAsync(plan, staging, signer, path, cancellationToken).ConfigureAwait(false);
        signatures.Signed(signer);
        Directory.Delete(staging, recursive: true);
        LogDailyWritten(tenant, day, plan.From, plan.TreeSize);
        metrics.Daily("written");
    }

    // The newest daily bundle's manifest (its file names sort by day).
    private static BundleManifest? LatestBundle(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return null;
        }

        var latest = Directory.EnumerateFiles(directory, "????-??-??.tar").Order(StringComparer.Ordinal).LastOrDefault();
        if (latest is null)
        {
            return null;
        }

        using var stream = File.OpenRead(latest);
        using var tar = new TarReader(stream);
        var first = tar.GetNextEntry();
        if (first is not { Name: BundleManifest.ManifestName, DataStream: { } data })
        {
            throw new InvalidOperationException($"{latest} does not start with {BundleManifest.ManifestName}.");
        }

        using var copy = new MemoryStream();
        data.CopyTo(copy);
        return BundleManifest.TryParse(copy.ToArray(), out var error) ?? throw new InvalidOperationException($"{latest}: {error}");
    }

    private async Task PackAsync(BundleWriter writer, BundlePlan plan, string staging, string output, CancellationToken cancellationToken)
    {
        var stream = new FileStream(output + PartialSuffix, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await using (stream.ConfigureAwait(false))
        {
            var signer = keys.Current;
            await writer.PackAsync(plan, staging, signer, stream, cancellationToken).ConfigureAwait(false);
            signatures.Signed(signer);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }

        File.Move(output + PartialSuffix, output, overwrite: true);
    }

    // Finished members only (entries, proofs and leaf-hash files); partially written ones have other names.
    private static readonly string[] StagedMembers = ["*.ndjson", "*.bin"];

    private static long StagedBytes(string staging) =>
        StagedMembers.SelectMany(pattern => Directory.EnumerateFiles(staging, pattern, SearchOption.AllDirectories)).Sum(f => new FileInfo(f).Length);

    private static async Task<(long Size, string Sha256)> DigestAsync(string path, CancellationToken cancellationToken)
    {
        var stream = File.OpenRead(path);
        await using (stream.ConfigureAwait(false))
        {
            var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
            return (stream.Length, Convert.ToHexStringLower(hash));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Daily bundle {Day} of tenant {Tenant} written: entries {From} to {TreeSize}")]
    private partial void LogDailyWritten(string tenant, string day, ulong from, ulong treeSize);

    [LoggerMessage(Level = LogLevel.Error, Message = "Daily bundle {Day} of tenant {Tenant} could not be written; the next sweep tries again")]
    private partial void LogDailyFailed(Exception exception, string tenant, string day);
}
