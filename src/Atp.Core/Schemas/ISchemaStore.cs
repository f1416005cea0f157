namespace Atp.Core.Schemas;

/// <summary>One immutable version of an event type's schema, as stored (canonical JSON text).</summary>
public sealed record StoredSchema(string Type, int Version, string Schema, DateTimeOffset CreatedAt);

/// <summary>A registered event type: its compatibility mode and its versions 1..<see cref="LatestVersion"/>.</summary>
public sealed record SchemaSubject(string Type, string Compatibility, int LatestVersion);

/// <summary>
/// The per-tenant schema registry's storage. Every method takes the tenant; versions are never changed or removed.
/// </summary>
public interface ISchemaStore
{
    /// <summary>The tenant's registered types (those with at least one version), by type name.</summary>
    Task<IReadOnlyList<SchemaSubject>> ListSchemaSubjectsAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>The type's mode and latest version, or null when the tenant has not registered it.</summary>
    Task<SchemaSubject?> GetSchemaSubjectAsync(string tenantId, string type, CancellationToken cancellationToken);

    /// <summary>Every version of the type, version 1 first (empty when it is not registered).</summary>
    Task<IReadOnlyList<StoredSchema>> ListSchemaVersionsAsync(string tenantId, string type, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="schema"/> as the type's next version and sets its mode, in one transaction; false (and
    /// nothing stored) when that version number is already taken (another registration won the race).
    /// </summary>
    Task<bool> TryAddSchemaVersionAsync(string tenantId, StoredSchema schema, string compatibility, CancellationToken cancellationToken);

    /// <summary>Sets a registered type's compatibility mode; false when the tenant has not registered the type.</summary>
    Task<bool> SetSchemaCompatibilityAsync(string tenantId, string type, string compatibility, CancellationToken cancellationToken);
}
