using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atp.Server.Export;

/// <summary>The formats an export job writes.</summary>
internal static class ExportFormats
{
    /// <summary>The verifiable bundle: a signed tar of the exact leaf bytes (format atp-bundle/1).</summary>
    public const string Ndjson = "ndjson";
    public const string Csv = "csv";

    /// <summary>OCSF 1.x API Activity (class 6003), one JSON object per line.</summary>
    public const string Ocsf = "ocsf";

    /// <summary>CloudEvents 1.0 structured mode, one JSON object per line.</summary>
    public const string CloudEvents = "cloudevents";

    public static readonly IReadOnlyList<string> All = [Ndjson, Csv, Ocsf, CloudEvents];

    public static string FileName(string format) => format switch
    {
        Ndjson => "bundle.tar",
        Csv => "export.csv",
        Ocsf => "export.ocsf.jsonl",
        _ => "export.cloudevents.jsonl",
    };

    public static string ContentType(string format) => format switch
    {
        Ndjson => "application/x-tar",
        Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
}

/// <summary>The states of a job; only <see cref="Queued"/> and <see cref="Running"/> are not final.</summary>
internal static class ExportStates
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";

    public static bool IsActive(string state) => state is Queued or Running;
}

/// <summary>
/// One export job as persisted in its directory's state file (rewritten atomically after every finished part): what it
/// exports (pinned at creation: the entries it covers and the checkpoint they are proved against), who asked, and how
/// far it got. <see cref="PartsDone"/> parts are complete on disk; a restarted worker continues with the next one.
/// </summary>
internal sealed record ExportJob
{
    public required string Id { get; init; }

    public required string Tenant { get; init; }

    public required string Format { get; init; }

    public required string State { get; init; }

    /// <summary>First index covered (inclusive).</summary>
    public required ulong FromIndex { get; init; }

    /// <summary>One past the last index covered.</summary>
    public required ulong ToIndex { get; init; }

    /// <summary>The signed checkpoint (exact note) the job's entries are proved against; its size is at least <see cref="ToIndex"/>.</summary>
    public required string Checkpoint { get; init; }

    public required ulong CheckpointSize { get; init; }

    /// <summary>The time window asked for, when the range was given as one (received time).</summary>
    public DateTimeOffset? From { get; init; }

    public DateTimeOffset? To { get; init; }

    /// <summary>The search filters of the request, verbatim; null for a complete export.</summary>
    public JsonElement? Filters { get; init; }

    /// <summary>Who created the job (a party of the platform audit log): type and id.</summary>
    public required string ActorType { get; init; }

    public required string ActorId { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset ExpiresAt { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The bytes the job was estimated to write when it was accepted (what the daily quota reserved).</summary>
    public long EstimatedBytes { get; init; }

    /// <summary>The job's byte limit (the tenant's exportJobMaxBytes when it was created).</summary>
    public long MaxBytes { get; init; }

    public int PartsDone { get; init; }

    /// <summary>The index the next part starts at (complete exports); for filtered exports the count of matches written.</summary>
    public ulong NextIndex { get; init; }

    public ulong Events { get; init; }

    public long Bytes { get; init; }

    /// <summary>Entries (complete) or matches (filtered) the job will write, when known.</summary>
    public ulong? Total { get; init; }

    /// <summary>How many times a worker started on this job (a resumed job counts more than one).</summary>
    public int Runs { get; init; }

    /// <summary>The part each run started from: [0] for a job run once; a job resumed after a crash continues where it was.</summary>
    public IReadOnlyList<int> RunStarts { get; init; } = [];

    public string? Error { get; init; }

    /// <summary>SHA-256 (lowercase hex) of the finished file.</summary>
    public string? Sha256 { get; init; }

    [JsonIgnore]
    public bool IsComplete => Filters is null;

    public int Percent => State == ExportStates.Succeeded ? 100
        : Total is { } total && total > 0 ? (int)Math.Min(99, Events * 100 / total)
        : 0;
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = false)]
[JsonSerializable(typeof(ExportJob))]
internal sealed partial class ExportJobJson : JsonSerializerContext;
