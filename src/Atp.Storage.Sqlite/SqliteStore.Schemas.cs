using Atp.Core.Schemas;

namespace Atp.Storage.Sqlite;

/// <summary>The per-tenant schema registry (docs/schemas.md): every statement is keyed by the tenant.</summary>
public sealed partial class SqliteStore
{
    private const string SubjectQuery = """
        SELECT t.type, t.compatibility, MAX(s.version)
        FROM event_types t JOIN event_schemas s ON s.tenant_id = t.tenant_id AND s.type = t.type
        WHERE t.tenant_id = $tenant AND ($type IS NULL OR t.type = $type)
        GROUP BY t.type, t.compatibility ORDER BY t.type
        """;

    public async Task<IReadOnlyList<SchemaSubject>> ListSchemaSubjectsAsync(string tenantId, CancellationToken cancellationToken) =>
        await QuerySubjectsAsync(tenantId, null, cancellationToken).ConfigureAwait(false);

    public async Task<SchemaSubject?> GetSchemaSubjectAsync(string tenantId, string type, CancellationToken cancellationToken) =>
        (await QuerySubjectsAsync(tenantId, type, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<IReadOnlyList<StoredSchema>> ListSchemaVersionsAsync(string tenantId, string type, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, schema, created_at FROM event_schemas WHERE tenant_id = $tenant AND type = $type ORDER BY version";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$type", type);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var versions = new List<StoredSchema>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            versions.Add(new StoredSchema(type, reader.GetInt32(0), reader.GetString(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero)));
        }

        return versions;
    }

    public async Task<bool> TryAddSchemaVersionAsync(string tenantId, StoredSchema schema, string compatibility, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction();
        using var type = connection.CreateCommand();
        type.Transaction = transaction;
        type.CommandText = """
            INSERT INTO event_types (tenant_id, type, compatibility) VALUES ($tenant, $type, $mode)
            ON CONFLICT (tenant_id, type) DO UPDATE SET compatibility = excluded.compatibility
            """;
        type.Parameters.AddWithValue("$tenant", tenantId);
        type.Parameters.AddWithValue("$type", schema.Type);
        type.Parameters.AddWithValue("$mode", compatibility);
        await type.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);

        using var version = connection.CreateCommand();
        version.Transaction = transaction;
        version.CommandText = """
            INSERT INTO event_schemas (tenant_id, type, version, schema, created_at) VALUES ($tenant, $type, $version, $schema, $created)
            ON CONFLICT (tenant_id, type, version) DO NOTHING
            """;
        version.Parameters.AddWithValue("$tenant", tenantId);
        version.Parameters.AddWithValue("$type", schema.Type);
        version.Parameters.AddWithValue("$version", schema.Version);
        version.Parameters.AddWithValue("$schema", schema.Schema);
        version.Parameters.AddWithValue("$created", schema.CreatedAt.UtcTicks);
        if (await version.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
        {
            // Another registration took this version number first: its mode change must not stand either.
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<bool> SetSchemaCompatibilityAsync(string tenantId, string type, string compatibility, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE event_types SET compatibility = $mode WHERE tenant_id = $tenant AND type = $type";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$type", type);
        command.Parameters.AddWithValue("$mode", compatibility);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<IReadOnlyList<SchemaSubject>> QuerySubjectsAsync(string tenantId, string? type, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = SubjectQuery;
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$type", (object?)type ?? DBNull.Value);

        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var subjects = new List<SchemaSubject>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            subjects.Add(new SchemaSubject(reader.GetString(0), reader.GetString(1), reader.GetInt32(2)));
        }

        return subjects;
    }
}
