using System.ComponentModel.DataAnnotations;

namespace Atp.Server;

/// <summary>The <c>Atp</c> configuration section.</summary>
public sealed class AtpOptions
{
    public const string Section = "Atp";

    /// <summary>Where the database, the cell signing key and the bootstrap key live.</summary>
    [Required]
    public string DataDirectory { get; set; } = "./atp-data";

    /// <summary>The region this cell serves.</summary>
    [Required]
    [RegularExpression("^[a-z][a-z0-9-]{1,31}$")]
    public string Region { get; set; } = "local";

    /// <summary>Log origin prefix; a tenant's log origin is <c>{Origin}/{tenant}</c>. Also the cell signing key's name.</summary>
    [Required]
    [RegularExpression(@"^[A-Za-z0-9._~:/-]{1,200}$")]
    public string Origin { get; set; } = "atp.local/local-dev-1";

    public BootstrapOptions Bootstrap { get; set; } = new();

    public IntegrityOptions Integrity { get; set; } = new();

    public IngestionOptions Ingestion { get; set; } = new();

    public string TenantOrigin(string tenantId) => $"{Origin}/{tenantId}";
}

public sealed class BootstrapOptions
{
    /// <summary>A platform-admin API key to accept (first start, tests). Never logged.</summary>
    public string? AdminKey { get; set; }
}

public sealed class IntegrityOptions
{
    /// <summary>How often the sealer signs checkpoints for logs that grew.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);
}

public sealed class IngestionOptions
{
    [Range(1, 10_000)]
    public int MaxEventsPerRequest { get; set; } = 1000;

    [Range(1024, 64 * 1024 * 1024)]
    public int MaxRequestBytes { get; set; } = 1024 * 1024;

    /// <summary>How long an Idempotency-Key is remembered (at least 24 h).</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "365.00:00:00")]
    public TimeSpan IdempotencyRetention { get; set; } = TimeSpan.FromHours(24);
}
