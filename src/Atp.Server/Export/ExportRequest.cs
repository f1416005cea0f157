using System.Text.Json;

namespace Atp.Server.Export;

/// <summary>
/// <c>POST …/exports</c>: a format and either an index range (<see cref="FromIndex"/>, <see cref="ToIndex"/>) or a
/// window of received time (<see cref="From"/>, <see cref="To"/>); <see cref="Filters"/> takes the search endpoint's
/// filter names (actor, actorType, action, targetType, targetId, outcome, q, and from/to on occurredAt).
/// </summary>
internal sealed record CreateExportRequest(string? Format, ulong? FromIndex, ulong? ToIndex, DateTimeOffset? From, DateTimeOffset? To, JsonElement Filters);

/// <summary>An export job as the API shows it.</summary>
internal sealed record ExportResponse(
    string Id,
    string Tenant,
    string Format,
    string State,
    ulong FromIndex,
    ulong ToIndex,
    ulong TreeSize,
    bool Complete,
    JsonElement? Filters,
    ulong Events,
    long Bytes,
    int Percent,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset? FinishedAt,
    string? Error,
    string? Sha256)
{
    public static ExportResponse Of(ExportJob job) => new(
        job.Id, job.Tenant, job.Format, job.State, job.FromIndex, job.ToIndex, job.CheckpointSize, job.IsComplete, job.Filters,
        job.Events, job.Bytes, job.Percent, job.CreatedAt, job.ExpiresAt, job.FinishedAt, job.Error, job.Sha256);
}

/// <summary>A page of the tenant's jobs, newest first; <see cref="NextCursor"/> continues after the last.</summary>
internal sealed record ExportListResponse(IReadOnlyList<ExportResponse> Items, string? NextCursor);
