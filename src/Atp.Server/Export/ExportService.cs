using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Atp.Core.Query;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Atp.Server.Export;

/// <summary>
/// Accepting an export job: the request is resolved to what the job will write (index range, the checkpoint it is
/// pinned to, the filters), its size is estimated, the tenant's export quotas are checked, and the job is persisted
/// queued for <see cref="ExportWorker"/>.
/// </summary>
internal sealed class ExportService(
    ExportJobStore jobs,
    ILogStore log,
    IEventQueryStore search,
    IOptions<ExportOptions> exportOptions,
    IOptions<AtpOptions> atpOptions,
    TimeProvider clock)
{
    /// <summary>The search filters an export accepts (those of GET …/events that select events, not pages).</summary>
    public static readonly IReadOnlyList<string> FilterNames = ["from", "to", "actor", "actorType", "action", "targetType", "targetId", "outcome", "q"];

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _tenantLocks = new(StringComparer.Ordinal);

    /// <summary>Raised with a job's id when one is queued (the worker starts it without waiting for its next sweep).</summary>
    public event Action? Queued;

    /// <summary>Resolves, checks and persists a job; the problem says why not (and sets Retry-After where it applies).</summary>
    public async Task<(ExportJob? Job, ProblemHttpResult? Problem)> CreateAsync(HttpContext context, Tenant tenant, CreateExportRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(request);
        var errors = new List<string>();
        var format = request.Format;
        if (format is null || !ExportFormats.All.Contains(format, StringComparer.Ordinal))
        {
            errors.Add($"format: one of {string.Join(", ", ExportFormats.All)}");
        }

        if ((request.FromIndex is not null || request.ToIndex is not null) && (request.From is not null || request.To is not null))
        {
            errors.Add("fromIndex/toIndex and from/to: give an index range or a time window, not both");
        }

        if (request.FromIndex is { } fi && request.ToIndex is { } ti && fi > ti)
        {
            errors.Add("toIndex: must not be below fromIndex");
        }

        if (request.From is { } f && request.To is { } t && f >= t)
        {
            errors.Add("to: must be later than from");
        }

        var (query, filterErrors) = ParseFilters(tenant.Id, request.Filters);
        errors.AddRange(filterErrors);
        if (errors.Count > 0)
        {
            return (null, Problem.Validation("The export request is not valid.", errors));
        }

        if (await log.GetLatestCheckpointAsync(tenant.Id, cancellationToken).ConfigureAwait(false) is not { } latest)
        {
            return (null, Problem.Conflict("export-nothing-signed", "The tenant's log has no signed checkpoint yet; an export covers only signed entries. Try again after the next checkpoint."));
        }

        var from = request.FromIndex ?? (request.From is { } windowFrom ? await FirstReceivedAtOrAfterAsync(tenant.Id, windowFrom, latest.Size, cancellationToken).ConfigureAwait(false) : 0);
        var to = request.ToIndex ?? (request.To is { } windowTo ? await FirstReceivedAtOrAfterAsync(tenant.Id, windowTo, latest.Size, cancellationToken).ConfigureAwait(false) : latest.Size);
        if (to > latest.Size)
        {
            return (null, Problem.Validation($"toIndex: at most {latest.Size}, the size of the latest signed checkpoint."));
        }

        from = Math.Min(from, to);
        var checkpoint = latest;
        if (format == ExportFormats.Ndjson && query is null)
        {
            // A complete bundle ends exactly at a signed checkpoint: the first stored one at or after the range's end.
            checkpoint = await ExportCheckpoints.AtOrAfterAsync(log, tenant.Id, to, cancellationToken).ConfigureAwait(false) ?? latest;
            to = checkpoint.Size;
        }

        ulong count;
        if (query is not null)
        {
            var status = await search.GetProjectionStatusAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
            if (status is null || status.Rebuilding || status.ProjectedSize < to)
            {
                context.Response.Headers.RetryAfter = "5";
                return (null, Problem.Create(503, "export-search-behind", "Search has not caught up", $"A filtered export needs search to cover the range up to index {to}; it covers {status?.ProjectedSize ?? 0} now. Retry shortly."));
            }

            count = (ulong)(await MatchesAsync(query, from, to, cancellationToken).ConfigureAwait(false)).Count;
        }
        else
        {
            count = to - from;
        }

        var limits = atpOptions.Value.RateLimits.For(tenant.Edition);
        var maxConcurrent = tenant.Settings.MaxConcurrentExports ?? limits.MaxConcurrentExports;
        var maxDaily = tenant.Settings.MaxDailyExportBytes ?? limits.MaxDailyExportBytes;
        var maxJob = tenant.Settings.ExportJobMaxBytes ?? limits.ExportJobMaxBytes;
        var estimate = await EstimateAsync(tenant.Id, format!, from, to, count, cancellationToken).ConfigureAwait(false);
        if (estimate > maxJob)
        {
            return (null, Problem.Create(413, "export-too-large", "The export is larger than the tenant's job limit",
                $"The export would write about {estimate} bytes; exportJobMaxBytes of this tenant is {maxJob}. Export a smaller range or fewer events (filters). This limit does not reset."));
        }

        var gate = _tenantLocks.GetOrAdd(tenant.Id, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = clock.GetUtcNow();
            var existing = jobs.List(tenant.Id);
            var active = existing.Count(j => ExportStates.IsActive(j.State));
            if (active >= maxConcurrent)
            {
                return (null, Problem.Create(429, "export-quota", "Too many export jobs",
                    $"The tenant has {active} export jobs queued or running; maxConcurrentExports is {maxConcurrent}. The quota frees when one of them ends (GET …/exports shows their progress; cancelling one frees it at once)."));
            }

            var dayStart = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
            var usedToday = existing.Where(j => j.CreatedAt >= dayStart).Sum(DailyBytes);
            if (usedToday + estimate > maxDaily)
            {
                var reset = dayStart.AddDays(1);
                context.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling((reset - now).TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                return (null, Problem.Create(429, "export-quota", "The tenant's daily export bytes are used up",
                    $"Exports of today use {usedToday} bytes and this one about {estimate}; maxDailyExportBytes is {maxDaily}. The quota resets at {reset:yyyy-MM-ddTHH:mm:ssZ} (00:00 UTC)."));
            }

            var actor = Audit.PlatformEvents.ActorOf(context);
            var job = new ExportJob
            {
                Id = ExportJobStore.NewId(),
                Tenant = tenant.Id,
                Format = format!,
                State = ExportStates.Queued,
                FromIndex = from,
                ToIndex = to,
                Checkpoint = checkpoint.Note,
                CheckpointSize = checkpoint.Size,
                From = request.From,
                To = request.To,
                Filters = query is null ? null : request.Filters.Clone(),
                ActorType = actor.Type,
                ActorId = actor.Id,
                CreatedAt = now,
                ExpiresAt = now + exportOptions.Value.Retention,
                EstimatedBytes = estimate,
                MaxBytes = maxJob,
                NextIndex = from,
                Total = count,
            };
            jobs.Create(job);
            Queued?.Invoke();
            return (job, null);
        }
        finally
        {
            gate.Release();
        }
    }

    // What a job counts against the day: what it wrote once it ended, what it was estimated at while it runs; a job
    // cancelled or failed counts what it wrote.
    private static long DailyBytes(ExportJob job) => ExportStates.IsActive(job.State) ? Math.Max(job.EstimatedBytes, job.Bytes) : job.Bytes;

    /// <summary>The search of a filtered export (ascending), or null without filters; errors name the filter.</summary>
    public static (EventQuery? Query, List<string> Errors) ParseFilters(string tenantId, JsonElement filters)
    {
        var errors = new List<string>();
        if (filters.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return (null, errors);
        }

        if (filters.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"filters: an object with any of {string.Join(", ", FilterNames)}");
            return (null, errors);
        }

        var values = new Dictionary<string, StringValues>(StringComparer.Ordinal);
        foreach (var member in filters.EnumerateObject())
        {
            if (!FilterNames.Contains(member.Name, StringComparer.Ordinal))
            {
                errors.Add($"filters.{member.Name}: unknown; use {string.Join(", ", FilterNames)}");
            }
            else if (member.Value.ValueKind != JsonValueKind.String)
            {
                errors.Add($"filters.{member.Name}: a string, as in the search endpoint's query string");
            }
            else if (!values.TryAdd(member.Name, member.Value.GetString()))
            {
                errors.Add($"filters.{member.Name}: given more than once");
            }
        }

        if (values.Count == 0 && errors.Count == 0)
        {
            errors.Add($"filters: name at least one of {string.Join(", ", FilterNames)}, or leave filters out for a complete export");
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var (query, _, _, _, parseErrors) = Query.SearchRequest.Parse(tenantId, new QueryCollection(values));
        errors.AddRange(parseErrors.Select(e => "filters." + e));
        return (errors.Count > 0 ? null : query! with { Ascending = true, Limit = 1000 }, errors);
    }

    /// <summary>The indexes in [<paramref name="from"/>, <paramref name="to"/>) that match, ascending.</summary>
    public async Task<List<ulong>> MatchesAsync(EventQuery query, ulong from, ulong to, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var matches = new List<ulong>();
        var page = query with { SnapshotSize = to, Ascending = true, Limit = 1000, After = null };
        while (true)
        {
            var result = await search.SearchAsync(page, cancellationToken).ConfigureAwait(false);
            matches.AddRange(result.Hits.Select(h => h.Entry.Index).Where(i => i >= from && i < to));
            if (!result.HasMore || result.Hits.Count == 0)
            {
                break;
            }

            page = page with { After = result.Hits[^1].Position };
        }

        matches.Sort();
        return matches;
    }

    // Receive times follow the log's order (each is stamped as the entry is appended), so a window of received time is
    // an index range; a binary search finds its ends with a few reads.
    private async Task<ulong> FirstReceivedAtOrAfterAsync(string tenantId, DateTimeOffset time, ulong size, CancellationToken cancellationToken)
    {
        ulong low = 0, high = size;
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            var entry = await log.GetEntryAsync(tenantId, middle, cancellationToken).ConfigureAwait(false);
            if (entry is not null && entry.ReceivedAt < time)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    // The average size of up to 32 entries spread over the range, times the entries, times the format's growth over
    // the leaf bytes (measured on the README's events: CSV about the same, CloudEvents 1.3×, OCSF 1.8×).
    private async Task<long> EstimateAsync(string tenantId, string format, ulong from, ulong to, ulong count, CancellationToken cancellationToken)
    {
        if (count == 0 || to <= from)
        {
            return format == ExportFormats.Ndjson ? 4096 : 0;
        }

        var samples = (ulong)Math.Min(32, (long)(to - from));
        long total = 0;
        for (ulong i = 0; i < samples; i++)
        {
            var entry = await log.GetEntryAsync(tenantId, from + (i * (to - from) / samples), cancellationToken).ConfigureAwait(false);
            total += (entry?.Leaf.Length ?? 0) + 1;
        }

        var average = (double)total / samples;
        var factor = format switch
        {
            ExportFormats.Ocsf => 1.8,
            ExportFormats.CloudEvents => 1.3,
            _ => 1.0,
        };
        var overhead = format == ExportFormats.Ndjson ? 4096 + (count * 512.0 / BundleManifestLines) : 0;
        return (long)Math.Ceiling((average * count * factor) + overhead);
    }

    // A tar header per entries file (512 bytes per 65,536 entries) is noise next to the entries.
    private const double BundleManifestLines = 65_536;
}
