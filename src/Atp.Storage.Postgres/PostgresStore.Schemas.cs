using Atp.Core.Schemas;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>The per-tenant schema registry (docs/schemas.md), under row-level security like every tenant table.</summary>
public sealed partial class PostgresStore
{
    private const string SubjectQuery = """
        SELECT t.type, t.compatibility, MAX(s.version)
        FROM atp.event_types t JOIN atp.event_schemas s ON s.tenant_id = t.tenant_id AND s.type = t.type
        WHERE t.tenant_id = $1 AND ($2::text IS NULL OR t.type = $2)
        GROUP BY t.type, t.compatibility ORDER BY t.type COLLATE "C"
        """;

    public Task<IReadOnlyList<SchemaSubject>> ListSchemaSubjectsAsync(string tenantId, CancellationToken cancellationToken) =>
        QueryAsync(tenantId, SubjectQuery, [tenantId, null], ReadSubject, cancellationToken);

    public async Task<SchemaSubject?> GetSchemaSubjectAsync(string tenantId, string type, CancellationToken cancellationToken) =>
        (await QueryAsync(tenantId, SubjectQuery, [tenantId, type], ReadSubject, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<StoredSchema>> ListSchemaVersionsAsync(string tenantId, string type, CancellationToken cancellationToken) =>
        QueryAsync(
            tenantId,
            "SELECT version, schema, created_at FROM atp.event_schemas WHERE tenant_id = $1 AND type = $2 ORDER BY version",
            [tenantId, type],
            reader => new StoredSchema(type, reader.GetInt32(0), reader.GetString(1), Ticks(reader, 2)!.Value),
            cancellationToken);

    public async Task<bool> TryAddSchemaVersionAsync(string tenantId, StoredSchema schema, string compatibility, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(
            connection, tenantId,
            TenantScope.Command(
                """
                INSERT INTO atp.event_types (tenant_id, type, compatibility) VALUES ($1, $2, $3)
                ON CONFLICT (tenant_id, type) DO UPDATE SET compatibility = excluded.compatibility
                """,
                tenantId, schema.Type, compatibility),
            TenantScope.Command(
                """
                INSERT INTO atp.event_schemas (tenant_id, type, version, schema, created_at) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tenant_id, type, version) DO NOTHING
                """,
                tenantId, schema.Type, schema.Version, schema.Schema, schema.CreatedAt.UtcTicks));
        batch.Transaction = transaction;
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        if (batch.BatchCommands[2].RecordsAffected == 0)
        {
            // Another registration took this version number first: its mode change must not stand either.
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<bool> SetSchemaCompatibilityAsync(string tenantId, string type, string compatibility, CancellationToken cancellationToken) =>
        await ExecuteAsync(tenantId, "UPDATE atp.event_types SET compatibility = $3 WHERE tenant_id = $1 AND type = $2", [tenantId, type, compatibility], cancellationToken).ConfigureAwait(false) == 1;

    private static SchemaSubject ReadSubject(NpgsqlDataReader reader) => new(reader.GetString(0), reader.GetString(1), reader.GetInt32(2));
}
