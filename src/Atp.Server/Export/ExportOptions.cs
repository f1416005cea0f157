using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atp.Server.Export;

/// <summary>The <c>Atp:Export</c> section: where export jobs keep their state and files, how long they live, how many run.</summary>
public sealed class ExportOptions
{
    public const string Section = "Atp:Export";

    /// <summary>
    /// One directory per job (state file, staging, the finished file) and the daily bundles. Default on SQLite:
    /// <c>&lt;Atp:DataDirectory&gt;/exports</c>; required on PostgreSQL, where the data directory is not the store.
    /// </summary>
    public string? Directory { get; set; }

    /// <summary>A job's files are deleted this long after it was created (its state says expired).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Jobs this node runs at the same time; the others wait queued.</summary>
    [Range(1, 64)]
    public int Workers { get; set; } = 1;

    /// <summary>Entries read from the store per batch while a job runs.</summary>
    [Range(1, 100_000)]
    public int BatchSize { get; set; } = 1000;

    /// <summary>Entries per part file of a job (the unit of resumption); an ndjson bundle's entries files hold at most 65,536.</summary>
    [Range(1, 65_536)]
    public int EntriesPerPart { get; set; } = 65_536;

    /// <summary>How often the worker looks for expired jobs and the daily bundles' time.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    public DailyExportOptions Daily { get; set; } = new();

    /// <summary>The directory in use: the configured one, else the default under the data directory.</summary>
    public string ResolveDirectory(string dataDirectory) => Path.GetFullPath(Directory ?? Path.Combine(dataDirectory, "exports"));
}

/// <summary>One signed ndjson bundle per active tenant per day (<c>Atp:Export:Daily</c>).</summary>
public sealed class DailyExportOptions
{
    public bool Enabled { get; set; }

    /// <summary>UTC time of day after which the day's bundles are written (the day before's entries, up to the checkpoint then).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "23:59:59")]
    public TimeSpan Time { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>The export directory must be named when the store is PostgreSQL: its nodes share no data directory.</summary>
internal sealed class ExportOptionsValidator(IConfiguration configuration) : IValidateOptions<ExportOptions>
{
    public ValidateOptionsResult Validate(string? name, ExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var provider = configuration["Atp:Storage:Provider"] ?? Storage.StorageEngine.Sqlite;
        if (provider == Storage.StorageEngine.Postgres && string.IsNullOrWhiteSpace(options.Directory))
        {
            return ValidateOptionsResult.Fail("Atp:Export:Directory is required when Atp:Storage:Provider is postgres (a directory every node of the cell can reach).");
        }

        return ValidateOptionsResult.Success;
    }
}
