using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Schemas;

/// <summary>The per-tenant schema registry (section <c>Atp:Schemas</c>; docs/schemas.md).</summary>
public sealed class SchemaRegistryOptions
{
    public const string Section = "Atp:Schemas";

    /// <summary>Event types one tenant may register.</summary>
    [Range(1, 100_000)]
    public int MaxTypesPerTenant { get; set; } = 1000;

    /// <summary>Versions one event type may have.</summary>
    [Range(1, 10_000)]
    public int MaxVersionsPerType { get; set; } = 100;

    /// <summary>
    /// How long a node trusts what it read about a type (registered or not, latest version, mode) before reading it
    /// again. A registration on this node is seen at once; one on another node of the cell within this time.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan CacheTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Compiled schema versions kept in memory (per node, all tenants); when full, the least recently used one makes room.</summary>
    [Range(16, 10_000_000)]
    public int MaxCompiledSchemas { get; set; } = 10_000;
}
