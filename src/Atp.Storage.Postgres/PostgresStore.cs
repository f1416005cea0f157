using System.Collections.Concurrent;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Schemas;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>
/// The scale-out engine: one PostgreSQL database per cell, shared by every node of the cell. Every tenant query runs
/// with the tenant set for its transaction, under row-level security; the few platform-level operations that span
/// tenants go through SECURITY DEFINER functions. Log writes go through this node's <see cref="PostgresSequencer"/>.
/// </summary>
public sealed partial class PostgresStore : ITenantStore, ILogStore, IEventQueryStore, ISchemaStore, IAsyncDisposable
{
    private const string ApiKeyColumns = "key_id, tenant_id, name, scopes, key_hash, created_at, expires_at, revoked_at, sealed_signing_secret, owner";
    private const string ApiKeyReadColumns = ApiKeyColumns + ", last_region";
    private const string EntryColumns = "idx, event_id, leaf, leaf_hash, received_at, purged_by";

    // Advisory lock namespace of the sealer ('atp-seal'); the second key is the tenant's hash.
    private const int SealLock = 0x61_74_70_73;

    private const int DefaultWriteBufferSize = 8192;
    private const int WriteBufferSize = 64 * 1024;

    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresSequencer[] _sequencers;
    private readonly ConcurrentDictionary<string, PostgresSequencer> _writerOf = new(StringComparer.Ordinal);
    private int _writersAssigned;
    private readonly PostgresReadModels _readModels;
    private int _disposed;

    public PostgresStore(IOptions<PostgresStoreOptions> options, TimeProvider clock, ILogger<PostgresStore> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.Value;
        Space = new StorageSpace(e => e is PostgresException { SqlState: PostgresErrorCodes.DiskFull }, lapses: true, clock, logger);
        if (!string.IsNullOrEmpty(settings.AdminConnectionString))
        {
            Migrate(settings.AdminConnectionString, ApplicationRole(settings.ConnectionString));
        }

        var builder = new NpgsqlDataSourceBuilder(settings.ConnectionString);

        // The hot statements (set_config, head lock, multi-row insert) are parsed and planned once per connection.
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
        {
            builder.ConnectionStringBuilder.MaxAutoPrepare = 64;
            builder.ConnectionStringBuilder.AutoPrepareMinUsages = 2;
        }

        // A group commit sends a few hundred KiB of leaves: with Npgsql's default 8 KiB write buffer that is one socket
        // send per 8 KiB (about 1,000 a second on the writer at 40,000 events/s, strace); 64 KiB sends it in a few.
        if (builder.ConnectionStringBuilder.WriteBufferSize == DefaultWriteBufferSize)
        {
            builder.ConnectionStringBuilder.WriteBufferSize = WriteBufferSize;
        }

        // The writer tells which request of a pipelined run failed from the statement the error names.
        builder.ConnectionStringBuilder.IncludeFailedBatchedCommand = true;
        _dataSource = builder.Build();
        using (var connection = _dataSource.OpenConnection())
        {
            PostgresSchema.RequireCurrent(connection);
            PostgresSchema.RequireIsolatedRole(connection);
        }

        var recent = new RecentLeaves(settings.RecentLeavesBytes);
        _readModels = new PostgresReadModels(_dataSource, recent, clock);
        _sequencers = [.. Enumerable.Range(0, settings.Writers).Select(_ => new PostgresSequencer(_dataSource, settings, recent, Quarantine, Space, clock, logger))];
    }

    /// <summary>
    /// Whether PostgreSQL had room for this node's last appends ("disk full", 53100). The state ends with the next commit
    /// that succeeds, or lapses <see cref="StorageSpace.FullStateLapse"/> after the last failure so that a node taken out
    /// of rotation as unready gets appends again to try.
    /// </summary>
    public StorageSpace Space { get; }

    /// <summary>True while this node's sequencer accepts appends.</summary>
    public bool IsWriterRunning => _sequencers.All(s => s.IsRunning);

    /// <summary>This node's quarantined logs (each node checks the tree state it loads and the heads it signs).</summary>
    public LogQuarantine Quarantine { get; } = new();

    /// <summary>
    /// Creates or upgrades the schema with the owner role's connection and grants <paramref name="applicationRole"/>
    /// what the store needs. Idempotent; refuses a schema newer than this build. Returns the schema version.
    /// </summary>
    public static int Migrate(string adminConnectionString, string applicationRole)
    {
        using var owner = new NpgsqlConnection(adminConnectionString);
        owner.Open();
        return PostgresSchema.Migrate(owner, applicationRole);
    }

    /// <summary>The role a connection string logs in as (the one migrations grant to).</summary>
    public static string ApplicationRole(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString).Username is { Length: > 0 } user
            ? user
            : throw new InvalidOperationException("ConnectionStrings:Atp must name the application role (Username=…).");

    public async Task<bool> TryCreateTenantAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(
            connection, tenant.Id,
            TenantScope.Command(
                """
                INSERT INTO atp.tenants (tenant_id, name, edition, home_region, residency_mode, allowed_regions, status, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id) DO NOTHING
                """,
                tenant.Id, tenant.Name, tenant.Edition, tenant.HomeRegion, tenant.Residency.Mode, tenant.Residency.AllowedRegions.ToArray(),
                tenant.Status, tenant.CreatedAt.UtcTicks),
            TenantScope.Command(
                """
                INSERT INTO atp.tree_heads (tenant_id, size, root)
                SELECT $1, 0, $2 WHERE NOT EXISTS (SELECT 1 FROM atp.tree_heads WHERE tenant_id = $1)
                """,
                tenant.Id, MerkleHasher.EmptyRoot.ToArray()));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return batch.BatchCommands[1].RecordsAffected == 1;
    }

    public async Task<Tenant?> GetTenantAsync(string tenantId, CancellationToken cancellationToken)
    {
        var tenants = await QueryAsync(
            tenantId,
            """
            SELECT tenant_id, name, edition, home_region, residency_mode, allowed_regions, status, created_at,
                   require_signed_requests, ingest_per_second, query_per_second,
                   ingest_events_per_second, ingest_bytes_per_second, read_cost_per_second,
                   max_concurrent_exports, max_daily_export_bytes, export_job_max_bytes, require_registered_types,
                   max_stored_events, max_stored_bytes
            FROM atp.tenants WHERE tenant_id = $1
            """,
            [tenantId],
            reader => new Tenant(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                new Residency(reader.GetString(4), reader.GetFieldValue<string[]>(5)),
                reader.GetString(6), Ticks(reader, 7)!.Value)
            {
                Settings = new TenantSettings(
                    reader.IsDBNull(8) ? null : reader.GetBoolean(8),
                    reader.IsDBNull(9) ? null : reader.GetInt32(9),
                    reader.IsDBNull(10) ? null : reader.GetInt32(10))
                {
                    IngestEventsPerSecond = reader.IsDBNull(11) ? null : reader.GetInt32(11),
                    IngestBytesPerSecond = reader.IsDBNull(12) ? null : reader.GetInt32(12),
                    ReadCostPerSecond = reader.IsDBNull(13) ? null : reader.GetInt32(13),
                    MaxConcurrentExports = reader.IsDBNull(14) ? null : reader.GetInt32(14),
                    MaxDailyExportBytes = reader.IsDBNull(15) ? null : reader.GetInt64(15),
                    ExportJobMaxBytes = reader.IsDBNull(16) ? null : reader.GetInt64(16),
                    RequireRegisteredTypes = reader.IsDBNull(17) ? null : reader.GetBoolean(17),
                    MaxStoredEvents = reader.IsDBNull(18) ? null : reader.GetInt64(18),
                    MaxStoredBytes = reader.IsDBNull(19) ? null : reader.GetInt64(19),
                },
            },
            cancellationToken).ConfigureAwait(false);
        return tenants.SingleOrDefault();
    }

    public async Task<bool> UpdateTenantSettingsAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return await ExecuteAsync(
            tenantId,
            """
            UPDATE atp.tenants SET require_signed_requests = $2, ingest_per_second = $3, query_per_second = $4,
                ingest_events_per_second = $5, ingest_bytes_per_second = $6, read_cost_per_second = $7,
                max_concurrent_exports = $8, max_daily_export_bytes = $9, export_job_max_bytes = $10, require_registered_types = $11,
                max_stored_events = $12, max_stored_bytes = $13
            WHERE tenant_id = $1
            """,
            [tenantId, settings.RequireSignedRequests, settings.IngestPerSecond, settings.QueryPerSecond, settings.IngestEventsPerSecond, settings.IngestBytesPerSecond, settings.ReadCostPerSecond, settings.MaxConcurrentExports, settings.MaxDailyExportBytes, settings.ExportJobMaxBytes, settings.RequireRegisteredTypes, settings.MaxStoredEvents, settings.MaxStoredBytes],
            cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<bool> SetTenantStatusAsync(string tenantId, string status, CancellationToken cancellationToken) =>
        await ExecuteAsync(tenantId, "UPDATE atp.tenants SET status = $2 WHERE tenant_id = $1", [tenantId, status], cancellationToken).ConfigureAwait(false) == 1;

    public async Task CreateApiKeyAsync(ApiKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        object?[] values = [key.Id, key.Name, key.Scopes.ToArray(), key.KeyHash, key.CreatedAt.UtcTicks, key.ExpiresAt?.UtcTicks, key.RevokedAt?.UtcTicks, key.SealedSigningSecret, key.Owner];
        if (key.TenantId is { } tenantId)
        {
            await ExecuteAsync(
                tenantId,
                $"INSERT INTO atp.api_keys ({ApiKeyColumns}) VALUES ($1, $10, $2, $3, $4, $5, $6, $7, $8, $9)",
                [.. values, tenantId],
                cancellationToken).ConfigureAwait(false);
            return;
        }

        // A platform key belongs to no tenant: only the owner's function may write a row without one.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT atp.create_platform_api_key($1, $2, $3, $4, $5, $6, $7, $8, $9)", connection);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        command.Parameters[5].NpgsqlDbType = command.Parameters[6].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint;
        command.Parameters[7].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bytea;
        command.Parameters[8].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // Authentication looks a key up before it knows the tenant: the one read of api_keys across tenants.
    public async Task<ApiKey?> FindApiKeyByHashAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        (await QueryPlatformAsync($"SELECT {ApiKeyReadColumns} FROM atp.find_api_key_by_hash($1)", [keyHash], ReadApiKey, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<ApiKey?> FindApiKeyByIdAsync(string keyId, CancellationToken cancellationToken) =>
        (await QueryPlatformAsync($"SELECT {ApiKeyReadColumns} FROM atp.find_api_key_by_id($1)", [keyId], ReadApiKey, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    // Keys of any tenant (and platform keys) are used across tenants' requests: the owner's function records the region.
    public async Task<string?> SetApiKeyRegionAsync(string keyId, string region, CancellationToken cancellationToken) =>
        (await QueryPlatformAsync("SELECT atp.set_api_key_region($1, $2)", [keyId, region], r => r.IsDBNull(0) ? null : r.GetString(0), cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<bool> HasPlatformAdminKeyAsync(CancellationToken cancellationToken) =>
        (await QueryPlatformAsync("SELECT atp.has_platform_admin_key()", [], r => r.GetBoolean(0), cancellationToken).ConfigureAwait(false)).Single();

    // Platform keys (no tenant) are invisible to the application role: the owner's functions list and change them.
    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenantId, CancellationToken cancellationToken) =>
        tenantId is null
            ? QueryPlatformAsync($"SELECT {ApiKeyReadColumns} FROM atp.list_platform_api_keys()", [], ReadApiKey, cancellationToken)
            : QueryAsync(tenantId, $"SELECT {ApiKeyReadColumns} FROM atp.api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id", [tenantId], ReadApiKey, cancellationToken);

    public async Task<bool> RevokeApiKeyAsync(string? tenantId, string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken) =>
        tenantId is null
            ? (await QueryPlatformAsync("SELECT atp.revoke_platform_api_key($1, $2)", [keyId, revokedAt.UtcTicks], r => r.GetBoolean(0), cancellationToken).ConfigureAwait(false)).Single()
            : await ExecuteAsync(
                tenantId, "UPDATE atp.api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND key_id = $2",
                [tenantId, keyId, revokedAt.UtcTicks], cancellationToken).ConfigureAwait(false) == 1;

    public async Task<bool> ReplaceSealedSigningSecretAsync(string tenantId, string keyId, byte[] current, byte[] replacement, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId, "UPDATE atp.api_keys SET sealed_signing_secret = $4 WHERE tenant_id = $1 AND key_id = $2 AND sealed_signing_secret = $3",
            [tenantId, keyId, current, replacement], cancellationToken).ConfigureAwait(false) == 1;

    public async Task<bool> ExpireApiKeyAsync(string? tenantId, string keyId, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        tenantId is null
            ? (await QueryPlatformAsync("SELECT atp.expire_platform_api_key($1, $2)", [keyId, expiresAt.UtcTicks], r => r.GetBoolean(0), cancellationToken).ConfigureAwait(false)).Single()
            : await ExecuteAsync(
                tenantId, "UPDATE atp.api_keys SET expires_at = LEAST(COALESCE(expires_at, $3), $3) WHERE tenant_id = $1 AND key_id = $2",
                [tenantId, keyId, expiresAt.UtcTicks], cancellationToken).ConfigureAwait(false) == 1;

    public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Quarantine.Contains(request.TenantId)
            ? Task.FromException<AppendOutcome>(Quarantine.Refusal(request.TenantId))
            : Writer(request.TenantId).AppendAsync(request, cancellationToken);
    }

    public async Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, "SELECT size, root FROM atp.tree_heads WHERE tenant_id = $1", [tenantId],
            reader => new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1])), cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<StorageUsage?> GetStorageUsageAsync(string tenantId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, "SELECT size, stored_bytes FROM atp.tree_heads WHERE tenant_id = $1", [tenantId],
            reader => new StorageUsage((ulong)reader.GetInt64(0), reader.GetInt64(1)), cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<LogEntry?> GetEntryAsync(string tenantId, ulong index, CancellationToken cancellationToken) =>
        index > long.MaxValue
            ? null
            : (await QueryAsync(tenantId, $"SELECT {EntryColumns} FROM atp.log_entries WHERE tenant_id = $1 AND idx = $2", [tenantId, (long)index], ReadEntry, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<LogEntry?> FindEventAsync(string tenantId, Guid eventId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, $"SELECT {EntryColumns} FROM atp.log_entries WHERE tenant_id = $1 AND event_id = $2 ORDER BY idx LIMIT 1",
            [tenantId, eventId], ReadEntry, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<LogEntry>> ListEntriesAsync(string tenantId, ulong fromIndex, int limit, CancellationToken cancellationToken) =>
        fromIndex > long.MaxValue || limit <= 0
            ? Task.FromResult<IReadOnlyList<LogEntry>>([])
            : QueryAsync(
                tenantId, $"SELECT {EntryColumns} FROM atp.log_entries WHERE tenant_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                [tenantId, (long)fromIndex, (long)limit], ReadEntry, cancellationToken);

    public IMerkleNodeReader NodeReader(string tenantId) => new PostgresNodeReader(_dataSource, tenantId);

    public Task<IReadOnlyList<LogSize>> ListLogSizesAsync(CancellationToken cancellationToken) =>
        QueryPlatformAsync("SELECT tenant_id, size FROM atp.list_log_sizes()", [], reader => new LogSize(reader.GetString(0), (ulong)reader.GetInt64(1)), cancellationToken);

    public Task<IReadOnlyList<UnsealedLog>> ListUnsealedAsync(CancellationToken cancellationToken) =>
        QueryPlatformAsync(
            "SELECT tenant_id, size, root FROM atp.list_unsealed_logs()", [],
            reader => new UnsealedLog(reader.GetString(0), new TreeHead((ulong)reader.GetInt64(1), new Hash((byte[])reader[2]))),
            cancellationToken);

    /// <summary>
    /// Stores a checkpoint unless one for the same size exists. One sealer per tenant at a time across nodes: the
    /// write holds the tenant's sealer advisory lock, and a node that finds it taken leaves the work to the holder
    /// (its log stays unsealed, so the next pass seals it if the holder did not cover it).
    /// </summary>
    public async Task SaveCheckpointAsync(string tenantId, ulong size, string note, DateTimeOffset createdAt, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId,
            $"""
            INSERT INTO atp.checkpoints (tenant_id, size, note, created_at)
            SELECT $1, $2, $3, $4 WHERE pg_try_advisory_xact_lock({SealLock}, hashtext($1))
            ON CONFLICT DO NOTHING
            """,
            [tenantId, (long)size, note, createdAt.UtcTicks], cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// One sealer per tenant across nodes for the whole seal: the transaction takes the tenant's sealer advisory lock
    /// (or leaves the tenant to the node holding it), then reads the committed head, signs it and stores the checkpoint.
    /// The head row is read, not locked: appends go on meanwhile, and the next pass seals what they add.
    /// </summary>
    public async Task<bool> SealAsync(string tenantId, Func<TreeHead, CancellationToken, Task<string?>> sign, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sign);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        TreeHead? head = null;
        await using (var read = TenantScope.Batch(
            connection,
            tenantId,
            TenantScope.Command($"SELECT pg_try_advisory_xact_lock({SealLock}, hashtext($1))", tenantId),
            TenantScope.Command(
                """
                SELECT h.size, h.root FROM atp.tree_heads h WHERE h.tenant_id = $1
                AND NOT EXISTS (SELECT 1 FROM atp.checkpoints c WHERE c.tenant_id = h.tenant_id AND c.size >= h.size)
                """,
                tenantId)))
        {
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            var locked = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetBoolean(0);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (locked && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                head = new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1]));
            }
        }

        // The signer checks the head against the last signed checkpoint (under this lock, so no other node signs
        // meanwhile) and refuses a head that fails: nothing is stored then.
        if (head is null || await sign(head, cancellationToken).ConfigureAwait(false) is not { } note)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }

        await using (var save = new NpgsqlCommand(
            "INSERT INTO atp.checkpoints (tenant_id, size, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", connection, transaction))
        {
            save.Parameters.Add(new NpgsqlParameter { Value = tenantId });
            save.Parameters.Add(new NpgsqlParameter { Value = (long)head.Size });
            save.Parameters.Add(new NpgsqlParameter { Value = note });
            save.Parameters.Add(new NpgsqlParameter { Value = createdAt.UtcTicks });
            await save.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<StoredCheckpoint?> GetLatestCheckpointAsync(string tenantId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, "SELECT size, note, created_at FROM atp.checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1", [tenantId],
            reader => new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), Ticks(reader, 2)!.Value), cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<StoredCheckpoint?> GetCheckpointAtOrAfterAsync(string tenantId, ulong size, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, "SELECT size, note, created_at FROM atp.checkpoints WHERE tenant_id = $1 AND size >= $2 ORDER BY size LIMIT 1",
            [tenantId, size > long.MaxValue ? long.MaxValue : (long)size],
            reader => new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), Ticks(reader, 2)!.Value), cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public async Task<int> PruneIdempotencyKeysAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        (int)(await QueryPlatformAsync("SELECT atp.prune_idempotency_keys($1)", [before.UtcTicks], r => r.GetInt64(0), cancellationToken).ConfigureAwait(false)).Single();

    public async ValueTask DisposeAsync()
    {
        // The container may hand the same instance out under several service types and dispose it for each.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var sequencer in _sequencers)
        {
            await sequencer.DisposeAsync().ConfigureAwait(false);
        }

        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    public Task<QueryPage> SearchAsync(EventQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        return _readModels.SearchAsync(query, cancellationToken);
    }

    public Task<SubjectPage> ListSubjectEventsAsync(SubjectQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        return _readModels.ListSubjectEventsAsync(query, cancellationToken);
    }

    public Task<int> ProjectPendingAsync(int maxEntries, CancellationToken cancellationToken) => _readModels.ProjectPendingAsync(maxEntries, cancellationToken);

    public Task<ulong> RebuildProjectionsAsync(string tenantId, CancellationToken cancellationToken) => _readModels.RebuildAsync(tenantId, cancellationToken);

    public Task<ProjectionStatus?> GetProjectionStatusAsync(string tenantId, CancellationToken cancellationToken) => _readModels.StatusAsync(tenantId, cancellationToken);

    public Task<DateTimeOffset?> OldestUnprojectedAsync(CancellationToken cancellationToken) => _readModels.OldestUnprojectedAsync(cancellationToken);

    public Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        _readModels.ListDeadLettersAsync(tenantId, limit, cancellationToken);

    public Task<int> RetryDeadLettersAsync(string tenantId, CancellationToken cancellationToken) => _readModels.RetryDeadLettersAsync(tenantId, cancellationToken);

    public Task<long> CountDeadLettersAsync(CancellationToken cancellationToken) => _readModels.CountDeadLettersAsync(cancellationToken);

    public Task<long> CountOutboxBacklogAsync(int maxRows, CancellationToken cancellationToken) => _readModels.CountOutboxBacklogAsync(maxRows, cancellationToken);

    // A tenant's appends always go to the same writer of this node, so they keep their order; different writers
    // (connections) append for different tenants in parallel. Tenants are dealt to the writers in turn as they first
    // append, so a few busy tenants spread evenly (a hash could put them all on one writer).
    private PostgresSequencer Writer(string tenantId) =>
        _sequencers.Length == 1
            ? _sequencers[0]
            : _writerOf.GetOrAdd(tenantId, static (_, store) => store._sequencers[(int)((uint)Interlocked.Increment(ref store._writersAssigned) % (uint)store._sequencers.Length)], this);

    // Rows of one tenant: the query runs in a transaction with atp.tenant_id set to that tenant.
    private async Task<IReadOnlyList<T>> QueryAsync<T>(string tenantId, string sql, object?[] values, Func<NpgsqlDataReader, T> map, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(connection, tenantId, TenantScope.Command(sql, values));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(map(reader));
        }

        return rows;
    }

    // A platform function (SECURITY DEFINER): no tenant is set, so nothing but what the function returns is visible.
    private async Task<IReadOnlyList<T>> QueryPlatformAsync<T>(string sql, object?[] values, Func<NpgsqlDataReader, T> map, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(map(reader));
        }

        return rows;
    }

    // One statement as one tenant; the number of rows it changed.
    private async Task<int> ExecuteAsync(string tenantId, string sql, object?[] values, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = TenantScope.Batch(connection, tenantId, TenantScope.Command(sql, values));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return batch.BatchCommands[1].RecordsAffected;
    }

    private static ApiKey ReadApiKey(NpgsqlDataReader reader) =>
        new(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2),
            reader.GetFieldValue<string[]>(3), (byte[])reader[4], Ticks(reader, 5)!.Value)
        {
            ExpiresAt = Ticks(reader, 6),
            RevokedAt = Ticks(reader, 7),
            SealedSigningSecret = reader.IsDBNull(8) ? null : (byte[])reader[8],
            Owner = reader.IsDBNull(9) ? null : reader.GetString(9),
            LastRegion = reader.IsDBNull(10) ? null : reader.GetString(10),
        };

    private static LogEntry ReadEntry(NpgsqlDataReader reader) =>
        new((ulong)reader.GetInt64(0), reader.GetGuid(1), (byte[])reader[2], new Hash((byte[])reader[3]), Ticks(reader, 4)!.Value)
        {
            PurgedBy = reader.IsDBNull(5) ? null : (ulong)reader.GetInt64(5),
        };

    private static DateTimeOffset? Ticks(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : new DateTimeOffset(reader.GetInt64(ordinal), TimeSpan.Zero);
}
