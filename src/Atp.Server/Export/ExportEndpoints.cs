using System.Globalization;
using Atp.Core.Keys;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Microsoft.Net.Http.Headers;

namespace Atp.Server.Export;

/// <summary>Export jobs: create, list, read, cancel, download (with HTTP Range).</summary>
internal static class ExportEndpoints
{
    private const int MaxRequestBytes = 16 * 1024;

    public static IEndpointRouteBuilder MapExportEndpoints(this IEndpointRouteBuilder app)
    {
        var exports = app.MapGroup("/v1/tenants/{tenant}/exports").WithTags("Exports").RequireTenantAccess();

        exports.MapPost("/", CreateAsync)
            .RequireAuthorization(Scopes.ExportsCreate)
            .WithSummary("Start an export job: format ndjson (a signed, verifiable bundle), csv, ocsf (API Activity 6003) or cloudevents; an index range or a received-time window; optional search filters")
            .WithDescription("202 with the job and its Location. A complete ndjson bundle ends at the first signed checkpoint at or after the range's end (toIndex, or the latest). "
                + "Filters (the search endpoint's names) make a filtered export; as ndjson it is a bundle that cannot prove completeness, every entry with its inclusion proof. "
                + "Refusals: 409 export-nothing-signed (no checkpoint yet), 413 export-too-large (exportJobMaxBytes), 429 export-quota (maxConcurrentExports; maxDailyExportBytes with Retry-After until 00:00 UTC), "
                + "503 export-search-behind (a filtered export before search covers the range).")
            .WithName("createExport")
            .WithJsonBody<CreateExportRequest>()
            .Produces<ExportResponse>(StatusCodes.Status202Accepted)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status413PayloadTooLarge, StatusCodes.Status503ServiceUnavailable);

        exports.MapGet("/", List)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("The tenant's export jobs, newest first; limit 1-100 (default 20), cursor from the previous page")
            .WithName("listExports")
            .WithParameter("limit", "How many jobs, 1-100 (default 20).", Microsoft.OpenApi.JsonSchemaType.Integer, "int32", "20", minimum: 1, maximum: 100)
            .WithParameter("cursor", "nextCursor of the previous page.", example: "exp_4f0c5e2b9a7d1c3e5f6a7b")
            .Produces<ExportListResponse>();

        exports.MapGet("/{id}", Get)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("One export job: state (queued, running, succeeded, failed, cancelled, expired), events, bytes, percent, createdAt, expiresAt, error, sha256 when done")
            .WithName("getExport")
            .Produces<ExportResponse>();

        exports.MapDelete("/{id}", CancelAsync)
            .RequireAuthorization(Scopes.ExportsCreate)
            .WithSummary("Cancel a queued or running export job (its files are deleted); 409 when it has already ended")
            .WithName("deleteExport")
            .Produces<ExportResponse>()
            .ProducesProblem(StatusCodes.Status409Conflict);

        exports.MapPost("/{id}/cancel", CancelAsync)
            .RequireAuthorization(Scopes.ExportsCreate)
            .WithSummary("Cancel a queued or running export job (the same as DELETE)")
            .WithName("cancelExport")
            .Produces<ExportResponse>()
            .ProducesProblem(StatusCodes.Status409Conflict);

        exports.MapGet("/{id}/download", DownloadAsync)
            .RequireAuthorization(Scopes.EventsRead)
            .WithSummary("The finished file (a .tar bundle, CSV or JSON lines); Range requests answer 206 with Content-Range; ETag is the file's SHA-256")
            .WithDescription("409 export-not-ready while the job is queued or running (or when it failed or was cancelled); 410 export-expired after its retention.")
            .WithName("downloadExport")
            .Produces<Stream>(StatusCodes.Status200OK, "application/octet-stream")
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status410Gone);
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ExportService service, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateExportRequest>(context, MaxRequestBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var tenant = TenantAccessFilter.Current(context);
        var (job, refusal) = await service.CreateAsync(context, tenant, request!, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        var data = ExportWorker.AuditData(job!);
        data["estimatedBytes"] = job!.EstimatedBytes.ToString(CultureInfo.InvariantCulture);
        await audit.RecordAsync(PlatformEvents.AdminAction(context, "export.created", tenant.Id, data), cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted($"/v1/tenants/{tenant.Id}/exports/{job.Id}", ExportResponse.Of(job));
    }

    private static IResult List(HttpContext context, int? limit, string? cursor, ExportJobStore jobs)
    {
        if (limit is < 1 or > 100)
        {
            return Problem.Validation("limit must be 1-100.");
        }

        var tenant = TenantAccessFilter.Current(context);
        IEnumerable<ExportJob> all = jobs.List(tenant.Id);
        if (cursor is not null)
        {
            var list = all.ToList();
            var at = list.FindIndex(j => j.Id == cursor);
            if (!ExportJobStore.IsJobId(cursor) || at < 0)
            {
                return Problem.Validation("cursor: not a cursor of this list (a job id from nextCursor).");
            }

            all = list.Skip(at + 1);
        }

        var page = all.Take((limit ?? 20) + 1).ToList();
        var items = page.Take(limit ?? 20).Select(ExportResponse.Of).ToList();
        return TypedResults.Ok(new ExportListResponse(items, page.Count > items.Count ? items[^1].Id : null));
    }

    private static IResult Get(HttpContext context, string id, ExportJobStore jobs) =>
        jobs.Find(TenantAccessFilter.Current(context).Id, id) is { } job ? TypedResults.Ok(ExportResponse.Of(job)) : NotFound(id);

    private static async Task<IResult> CancelAsync(HttpContext context, string id, ExportJobStore jobs, ExportWorker worker, ExportMetrics metrics, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        if (jobs.Find(tenant.Id, id) is null)
        {
            return NotFound(id);
        }

        var cancelled = jobs.Update(tenant.Id, id, j => ExportStates.IsActive(j.State) ? j with { State = ExportStates.Cancelled, FinishedAt = clock.GetUtcNow() } : null);
        if (cancelled is null)
        {
            var state = jobs.Find(tenant.Id, id)?.State;
            return Problem.Conflict("export-finished", $"Export {id} has already ended ({state}); only a queued or running job can be cancelled.");
        }

        worker.Cancel(id);
        if (!worker.IsRunning(id))
        {
            // A running job's worker deletes its files and counts it as it stops.
            jobs.DeleteFiles(cancelled);
            metrics.JobEnded(cancelled.Format, ExportStates.Cancelled, 0);
        }

        await audit.RecordAsync(PlatformEvents.AdminAction(context, "export.cancelled", tenant.Id, ExportWorker.AuditData(cancelled)), cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(ExportResponse.Of(cancelled));
    }

    private static async Task<IResult> DownloadAsync(HttpContext context, string id, ExportJobStore jobs, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        if (jobs.Find(tenant.Id, id) is not { } job)
        {
            return NotFound(id);
        }

        if (job.State == ExportStates.Expired)
        {
            return Problem.Create(410, "export-expired", "The export has expired", $"Export {id} expired at {job.ExpiresAt:yyyy-MM-ddTHH:mm:ssZ}; its files were deleted. Start a new export.");
        }

        if (job.State != ExportStates.Succeeded || job.Sha256 is null)
        {
            return Problem.Conflict("export-not-ready", $"Export {id} is {job.State}" + (ExportStates.IsActive(job.State) ? $" ({job.Percent}%); download it once it succeeded." : "; it has no file."));
        }

        var path = jobs.OutputPath(job);
        if (!File.Exists(path))
        {
            return Problem.Create(410, "export-expired", "The export's file is gone", $"Export {id}'s file is no longer on this node's export directory.");
        }

        // One record per download, not per Range request: a client resuming a download asks again from a later byte.
        var range = context.Request.Headers.Range.ToString();
        if (range.Length == 0 || range.StartsWith("bytes=0-", StringComparison.Ordinal))
        {
            var data = ExportWorker.AuditData(job);
            data["range"] = range.Length == 0 ? "whole" : range;
            await audit.RecordAsync(PlatformEvents.AdminAction(context, "export.downloaded", tenant.Id, data), cancellationToken).ConfigureAwait(false);
        }

        context.Response.Headers.CacheControl = "private, no-store";
        return TypedResults.PhysicalFile(
            path,
            ExportFormats.ContentType(job.Format),
            $"{tenant.Id}-{job.Id}-{ExportFormats.FileName(job.Format)}",
            job.FinishedAt,
            new EntityTagHeaderValue("\"" + job.Sha256 + "\""),
            enableRangeProcessing: true);
    }

    private static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult NotFound(string id) => Problem.NotFound($"No export {id} for this tenant.");
}
