using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Query;
using Atp.Core.Schemas;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The embedded engine: one SQLite database per cell under the data directory. Every query takes the tenant; no
/// method reads across tenants. All log writes go through the <see cref="SqliteSequencer"/>.
/// </summary>
public sealed partial class SqliteStore : ITenantStore, ILogStore, IEventQueryStore, ISchemaStore, IAsyncDisposable
{
    private const long WalTruncateBytes = 256L << 20;
    private const int MaxBusyTruncations = 5;
    private const long ReadModelWalCheckpointBytes = 64L << 20;
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromMilliseconds(500);

    private readonly SqliteConnections _connections;
    private readonly SqliteConnections _readModelConnections;
    private readonly TenantNumbers _tenantNumbers = new();
    private readonly WriteConnection _writeConnection;
    private readonly WriteConnection _readModelWriter;
    private readonly SqliteSequencer _sequencer;
    private readonly SqliteReadModels _readModels;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _walCheckpointer;
    private readonly Task _spaceWatcher;
    private readonly SpaceReserve _reserve;
    private readonly long _minimumFreeBytes;
    private int _disposed;

    public SqliteStore(IOptions<SqliteStoreOptions> options, TimeProvider clock, ILogger<SqliteStore> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.Value;
        var directory = Path.GetDirectoryName(settings.DatabasePath)!;
        Directory.CreateDirectory(directory);
        _minimumFreeBytes = settings.MinimumFreeBytes;
        _reserve = new SpaceReserve(directory, settings.SpaceReserveBytes);
        Space = new StorageSpace(e => IsDiskFull(e), lapses: false, clock, logger);
        _connections = new SqliteConnections(settings.DatabasePath);
        _readModelConnections = new SqliteConnections(settings.ReadModelPath, durable: false);
        var damaged = false;
        OpenOnFullDisk(() =>
        {
            using (var connection = _connections.Open())
            {
                SqliteSchema.Migrate(connection);
            }

            damaged |= OpenReadModels(clock, logger);
        });

        _writeConnection = new WriteConnection(_connections);
        _readModelWriter = new WriteConnection(_readModelConnections);
        var outbox = new OutboxProgress();
        _readModels = new SqliteReadModels(_connections, _writeConnection, _readModelConnections, _readModelWriter, _tenantNumbers, outbox, clock, logger);
        Dictionary<string, ulong> sizes = [];
        try
        {
            OpenOnFullDisk(() => sizes = _readModels.Reconcile());
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            // Damage the first checks did not reach: start over with a new file once more.
            _readModelWriter.Dispose();
            MoveReadModelsAside(e.Message, clock, logger);
            _readModelWriter = new WriteConnection(_readModelConnections);
            _readModels = new SqliteReadModels(_connections, _writeConnection, _readModelConnections, _readModelWriter, _tenantNumbers, outbox, clock, logger);
            sizes = _readModels.Reconcile();
            damaged = true;
        }

        if (damaged)
        {
            _readModels.RebuildingUntil(sizes);
        }

        _sequencer = new SqliteSequencer(_writeConnection, outbox, _tenantNumbers, Quarantine, settings, Space, clock, logger);
        _walCheckpointer = Task.Run(() => CheckpointWalAsync(_stopping.Token));
        _spaceWatcher = Task.Run(() => WatchSpaceAsync(clock, _stopping.Token));
    }

    /// <summary>Whether the data directory's disk has room for appends (shared with the sealer, projector and readiness).</summary>
    public StorageSpace Space { get; }

    /// <summary>The database file.</summary>
    public string DatabasePath => _connections.DatabasePath;

    /// <summary>True while the read models are rebuilt after damage to their file (searches are refused meanwhile).</summary>
    public bool IsRebuilding => _readModels.IsRebuilding;

    /// <summary>True while the sequencer accepts appends.</summary>
    public bool IsWriterRunning => _sequencer.IsRunning;

    public LogQuarantine Quarantine { get; } = new();

    public async Task<bool> TryCreateTenantAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO tenants (id, num, name, edition, home_region, residency_mode, allowed_regions, status, created_at)
            VALUES ($id, (SELECT COALESCE(MAX(num), 0) + 1 FROM tenants), $name, $edition, $region, $mode, $allowed, $status, $created)
            ON CONFLICT (id) DO NOTHING
            """;
        command.Parameters.AddWithValue("$id", tenant.Id);
        command.Parameters.AddWithValue("$name", tenant.Name);
        command.Parameters.AddWithValue("$edition", tenant.Edition);
        command.Parameters.AddWithValue("$region", tenant.HomeRegion);
        command.Parameters.AddWithValue("$mode", tenant.Residency.Mode);
        command.Parameters.AddWithValue("$allowed", JsonSerializer.Serialize(tenant.Residency.AllowedRegions, StringListJson.Default.IReadOnlyListString));
        command.Parameters.AddWithValue("$status", tenant.Status);
        command.Parameters.AddWithValue("$created", tenant.CreatedAt.ToString("O"));
        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
        {
            return false;
        }

        using var head = connection.CreateCommand();
        head.Transaction = transaction;
        head.CommandText = "INSERT INTO tree_heads (tenant_id, size, root) VALUES ($id, 0, $root)";
        head.Parameters.AddWithValue("$id", tenant.Id);
        head.Parameters.AddWithValue("$root", MerkleHasher.EmptyRoot.ToArray());
        await head.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public Task<Tenant?> GetTenantAsync(string tenantId, CancellationToken cancellationToken) =>
        QuerySingleAsync(
            """
            SELECT id, name, edition, home_region, residency_mode, allowed_regions, status, created_at,
                   require_signed_requests, ingest_per_second, query_per_second,
                   ingest_events_per_second, ingest_bytes_per_second, read_cost_per_second,
                   max_concurrent_exports, max_daily_export_bytes, export_job_max_bytes, require_registered_types,
                   max_stored_events, max_stored_bytes
            FROM tenants WHERE id = $x
            """,
            tenantId,
            reader => new Tenant(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                new Residency(reader.GetString(4), JsonSerializer.Deserialize(reader.GetString(5), StringListJson.Default.IReadOnlyListString) ?? []),
                reader.GetString(6), DateTimeOffset.Parse(reader.GetString(7), System.Globalization.CultureInfo.InvariantCulture))
            {
                Settings = new TenantSettings(
                    reader.IsDBNull(8) ? null : reader.GetInt64(8) != 0,
                    reader.IsDBNull(9) ? null : reader.GetInt32(9),
                    reader.IsDBNull(10) ? null : reader.GetInt32(10))
                {
                    IngestEventsPerSecond = reader.IsDBNull(11) ? null : reader.GetInt32(11),
                    IngestBytesPerSecond = reader.IsDBNull(12) ? null : reader.GetInt32(12),
                    ReadCostPerSecond = reader.IsDBNull(13) ? null : reader.GetInt32(13),
                    MaxConcurrentExports = reader.IsDBNull(14) ? null : reader.GetInt32(14),
                    MaxDailyExportBytes = reader.IsDBNull(15) ? null : reader.GetInt64(15),
                    ExportJobMaxBytes = reader.IsDBNull(16) ? null : reader.GetInt64(16),
                    RequireRegisteredTypes = reader.IsDBNull(17) ? null : reader.GetInt64(17) != 0,
                    MaxStoredEvents = reader.IsDBNull(18) ? null : reader.GetInt64(18),
                    MaxStoredBytes = reader.IsDBNull(19) ? null : reader.GetInt64(19),
                },
            },
            cancellationToken);

    public async Task<bool> UpdateTenantSettingsAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE tenants SET require_signed_requests = $signed, ingest_per_second = $ingest, query_per_second = $query, ingest_events_per_second = $events, ingest_bytes_per_second = $bytes, read_cost_per_second = $readCost, max_concurrent_exports = $exports, max_daily_export_bytes = $dailyExportBytes, export_job_max_bytes = $exportJobBytes, require_registered_types = $registeredTypes, max_stored_events = $storedEvents, max_stored_bytes = $storedBytes WHERE id = $id";
        command.Parameters.AddWithValue("$id", tenantId);
        command.Parameters.AddWithValue("$signed", settings.RequireSignedRequests is { } signed ? (signed ? 1 : 0) : DBNull.Value);
        command.Parameters.AddWithValue("$ingest", (object?)settings.IngestPerSecond ?? DBNull.Value);
        command.Parameters.AddWithValue("$query", (object?)settings.QueryPerSecond ?? DBNull.Value);
        command.Parameters.AddWithValue("$events", (object?)settings.IngestEventsPerSecond ?? DBNull.Value);
        command.Parameters.AddWithValue("$bytes", (object?)settings.IngestBytesPerSecond ?? DBNull.Value);
        command.Parameters.AddWithValue("$readCost", (object?)settings.ReadCostPerSecond ?? DBNull.Value);
        command.Parameters.AddWithValue("$exports", (object?)settings.MaxConcurrentExports ?? DBNull.Value);
        command.Parameters.AddWithValue("$dailyExportBytes", (object?)settings.MaxDailyExportBytes ?? DBNull.Value);
        command.Parameters.AddWithValue("$exportJobBytes", (object?)settings.ExportJobMaxBytes ?? DBNull.Value);
        command.Parameters.AddWithValue("$registeredTypes", settings.RequireRegisteredTypes is { } registered ? (registered ? 1 : 0) : DBNull.Value);
        command.Parameters.AddWithValue("$storedEvents", (object?)settings.MaxStoredEvents ?? DBNull.Value);
        command.Parameters.AddWithValue("$storedBytes", (object?)settings.MaxStoredBytes ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<bool> SetTenantStatusAsync(string tenantId, string status, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE tenants SET status = $status WHERE id = $id";
        command.Parameters.AddWithValue("$id", tenantId);
        command.Parameters.AddWithValue("$status", status);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task CreateApiKeyAsync(ApiKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO api_keys (id, tenant_id, name, scopes, key_hash, created_at, expires_at, revoked_at, sealed_signing_secret, owner) VALUES ($id, $tenant, $name, $scopes, $hash, $created, $expires, $revoked, $secret, $owner)";
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$tenant", (object?)key.TenantId ?? DBNull.Value);
        command.Parameters.AddWithValue("$name", key.Name);
        command.Parameters.AddWithValue("$scopes", string.Join(' ', key.Scopes));
        command.Parameters.AddWithValue("$hash", key.KeyHash);
        command.Parameters.AddWithValue("$created", key.CreatedAt.ToString("O"));
        command.Parameters.AddWithValue("$expires", (object?)key.ExpiresAt?.UtcTicks ?? DBNull.Value);
        command.Parameters.AddWithValue("$revoked", (object?)key.RevokedAt?.UtcTicks ?? DBNull.Value);
        command.Parameters.AddWithValue("$secret", (object?)key.SealedSigningSecret ?? DBNull.Value);
        command.Parameters.AddWithValue("$owner", (object?)key.Owner ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> ReplaceSealedSigningSecretAsync(string tenantId, string keyId, byte[] current, byte[] replacement, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE api_keys SET sealed_signing_secret = $replacement WHERE tenant_id = $tenant AND id = $id AND sealed_signing_secret = $current";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", keyId);
        command.Parameters.AddWithValue("$current", current);
        command.Parameters.AddWithValue("$replacement", replacement);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async Task<ApiKey?> FindApiKeyByHashAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        var keys = await QueryApiKeysAsync("key_hash = $x", keyHash, cancellationToken).ConfigureAwait(false);
        return keys.Count == 1 ? keys[0] : null;
    }

    public async Task<ApiKey?> FindApiKeyByIdAsync(string keyId, CancellationToken cancellationToken)
    {
        var keys = await QueryApiKeysAsync("id = $x", keyId, cancellationToken).ConfigureAwait(false);
        return keys.Count == 1 ? keys[0] : null;
    }

    // "IS" compares NULL as a value, so a null tenant selects exactly the platform keys.
    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenantId, CancellationToken cancellationToken) =>
        QueryApiKeysAsync("tenant_id IS $x", (object?)tenantId ?? DBNull.Value, cancellationToken);

    public Task<bool> RevokeApiKeyAsync(string? tenantId, string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken) =>
        UpdateApiKeyAsync("revoked_at = COALESCE(revoked_at, $at)", tenantId, keyId, revokedAt, cancellationToken);

    public Task<bool> ExpireApiKeyAsync(string? tenantId, string keyId, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        UpdateApiKeyAsync("expires_at = MIN(COALESCE(expires_at, $at), $at)", tenantId, keyId, expiresAt, cancellationToken);

    public async Task<string?> SetApiKeyRegionAsync(string keyId, string region, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = connection.BeginTransaction();
        using var read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = "SELECT last_region FROM api_keys WHERE id = $id";
        read.Parameters.AddWithValue("$id", keyId);
        var previous = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        using var write = connection.CreateCommand();
        write.Transaction = transaction;
        write.CommandText = "UPDATE api_keys SET last_region = $region WHERE id = $id";
        write.Parameters.AddWithValue("$id", keyId);
        write.Parameters.AddWithValue("$region", region);
        await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return previous;
    }

    // Changes one key of one tenant (null: a platform key); the tenant condition keeps a key id of another tenant out of reach.
    private async Task<bool> UpdateApiKeyAsync(string assignment, string? tenantId, string keyId, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE api_keys SET {assignment} WHERE id = $id AND tenant_id IS $t";
        command.Parameters.AddWithValue("$at", at.UtcTicks);
        command.Parameters.AddWithValue("$id", keyId);
        command.Parameters.AddWithValue("$t", (object?)tenantId ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<IReadOnlyList<ApiKey>> QueryApiKeysAsync(string condition, object value, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, tenant_id, name, scopes, key_hash, created_at, expires_at, revoked_at, sealed_signing_secret, last_region, owner FROM api_keys WHERE {condition} ORDER BY created_at, id";
        command.Parameters.AddWithValue("$x", value);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var keys = new List<ApiKey>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            keys.Add(new ApiKey(
                reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2),
                reader.GetString(3).Split(' ', StringSplitOptions.RemoveEmptyEntries), (byte[])reader[4],
                DateTimeOffset.Parse(reader.GetString(5), System.Globalization.CultureInfo.InvariantCulture))
            {
                ExpiresAt = reader.IsDBNull(6) ? null : new DateTimeOffset(reader.GetInt64(6), TimeSpan.Zero),
                RevokedAt = reader.IsDBNull(7) ? null : new DateTimeOffset(reader.GetInt64(7), TimeSpan.Zero),
                SealedSigningSecret = reader.IsDBNull(8) ? null : (byte[])reader[8],
                LastRegion = reader.IsDBNull(9) ? null : reader.GetString(9),
                Owner = reader.IsDBNull(10) ? null : reader.GetString(10),
            });
        }

        return keys;
    }

    public async Task<bool> HasPlatformAdminKeyAsync(CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT EXISTS (SELECT 1 FROM api_keys WHERE tenant_id IS NULL AND (' ' || scopes || ' ') LIKE '% platform:admin %')";
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long found && found == 1;
    }

    public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Quarantine.Contains(request.TenantId)
            ? Task.FromException<AppendOutcome>(Quarantine.Refusal(request.TenantId))
            : _sequencer.AppendAsync(request, cancellationToken);
    }

    public Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken) =>
        QuerySingleAsync(
            "SELECT size, root FROM tree_heads WHERE tenant_id = $x",
            tenantId,
            reader => new TreeHead((ulong)reader.GetInt64(0), new Hash((byte[])reader[1])),
            cancellationToken);

    public Task<StorageUsage?> GetStorageUsageAsync(string tenantId, CancellationToken cancellationToken) =>
        QuerySingleAsync(
            "SELECT size, stored_bytes FROM tree_heads WHERE tenant_id = $x",
            tenantId,
            reader => new StorageUsage((ulong)reader.GetInt64(0), reader.GetInt64(1)),
            cancellationToken);

    public async Task<LogEntry?> GetEntryAsync(string tenantId, ulong index, CancellationToken cancellationToken)
    {
        if (index > LogRowId.MaxIndex)
        {
            return null;
        }

        var entries = await QueryEntriesAsync(tenantId, index, null, 1, cancellationToken).ConfigureAwait(false);
        return entries.Count == 1 && entries[0].Index == index ? entries[0] : null;
    }

    public async Task<LogEntry?> FindEventAsync(string tenantId, Guid eventId, CancellationToken cancellationToken)
    {
        var entries = await QueryEntriesAsync(tenantId, 0, eventId, 1, cancellationToken).ConfigureAwait(false);
        return entries.Count == 1 ? entries[0] : null;
    }

    public Task<IReadOnlyList<LogEntry>> ListEntriesAsync(string tenantId, ulong fromIndex, int limit, CancellationToken cancellationToken) =>
        fromIndex > LogRowId.MaxIndex
            ? Task.FromResult<IReadOnlyList<LogEntry>>([])
            : QueryEntriesAsync(tenantId, fromIndex, null, limit, cancellationToken);

    public IMerkleNodeReader NodeReader(string tenantId) => new SqliteNodeReader(_connections, _tenantNumbers, tenantId);

    public async Task<IReadOnlyList<LogSize>> ListLogSizesAsync(CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT tenant_id, size FROM tree_heads ORDER BY tenant_id";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var sizes = new List<LogSize>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sizes.Add(new LogSize(reader.GetString(0), (ulong)reader.GetInt64(1)));
        }

        return sizes;
    }

    public async Task<IReadOnlyList<UnsealedLog>> ListUnsealedAsync(CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT h.tenant_id, h.size, h.root FROM tree_heads h
            WHERE NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.tenant_id = h.tenant_id AND c.size >= h.size)
            """;
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var logs = new List<UnsealedLog>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            logs.Add(new UnsealedLog(reader.GetString(0), new TreeHead((ulong)reader.GetInt64(1), new Hash((byte[])reader[2]))));
        }

        return logs;
    }

    public async Task SaveCheckpointAsync(string tenantId, ulong size, string note, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO checkpoints (tenant_id, size, note, created_at) VALUES ($t, $s, $n, $c) ON CONFLICT DO NOTHING";
        command.Parameters.AddWithValue("$t", tenantId);
        command.Parameters.AddWithValue("$s", (long)size);
        command.Parameters.AddWithValue("$n", note);
        command.Parameters.AddWithValue("$c", createdAt.ToString("O"));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task<StoredCheckpoint?> GetLatestCheckpointAsync(string tenantId, CancellationToken cancellationToken) =>
        QuerySingleAsync(
            "SELECT size, note, created_at FROM checkpoints WHERE tenant_id = $x ORDER BY size DESC LIMIT 1",
            tenantId,
            reader => new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), DateTimeOffset.Parse(reader.GetString(2), System.Globalization.CultureInfo.InvariantCulture)),
            cancellationToken);

    public async Task<StoredCheckpoint?> GetCheckpointAtOrAfterAsync(string tenantId, ulong size, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT size, note, created_at FROM checkpoints WHERE tenant_id = $t AND size >= $s ORDER BY size LIMIT 1";
        command.Parameters.AddWithValue("$t", tenantId);
        command.Parameters.AddWithValue("$s", size > long.MaxValue ? long.MaxValue : (long)size);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new StoredCheckpoint((ulong)reader.GetInt64(0), reader.GetString(1), DateTimeOffset.Parse(reader.GetString(2), System.Globalization.CultureInfo.InvariantCulture))
            : null;
    }

    public async Task<int> PruneIdempotencyKeysAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM idempotency_keys WHERE created_at < $before";
        command.Parameters.AddWithValue("$before", before.UtcTicks);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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

    public Task<IReadOnlyList<string>> ListProjectedTenantsAsync(CancellationToken cancellationToken) => _readModels.ListProjectedTenantsAsync(cancellationToken);

    public Task<ReadModelVerification> VerifyProjectedRowsAsync(string tenantId, ulong fromIndex, int maxRows, CancellationToken cancellationToken) =>
        _readModels.VerifyProjectedRowsAsync(tenantId, fromIndex, maxRows, cancellationToken);

    // The read models' file at start: a damaged one (truncated, or not readable as a database) must not keep the
    // server, and with it ingest, from starting. It is moved aside and a new one is projected from the log.
    private bool OpenReadModels(TimeProvider clock, ILogger logger)
    {
        string? damage;
        try
        {
            using var connection = _readModelConnections.Open();
            damage = ReadModelDamage.FindTruncation(connection, _readModelConnections.DatabasePath);
            if (damage is null)
            {
                ReadModelSchema.Migrate(connection);
            }
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            damage = e.Message;
        }

        if (damage is null)
        {
            return false;
        }

        MoveReadModelsAside(damage, clock, logger);
        return true;
    }

    private void MoveReadModelsAside(string damage, TimeProvider clock, ILogger logger)
    {
        _readModelConnections.ClearPool();
        var aside = ReadModelDamage.MoveAside(_readModelConnections.DatabasePath, clock.GetUtcNow());
        ReadModelDamage.LogMovedAside(logger, _readModelConnections.DatabasePath, damage, aside);
        using var connection = _readModelConnections.Open();
        ReadModelSchema.Migrate(connection);
    }

    public async ValueTask DisposeAsync()
    {
        // The container may hand the same instance out under several service types and dispose it for each.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _walCheckpointer.ConfigureAwait(false);
        await _spaceWatcher.ConfigureAwait(false);
        _stopping.Dispose();
        await _sequencer.DisposeAsync().ConfigureAwait(false);
        _writeConnection.Dispose();
        _readModelWriter.Dispose();
        SqliteConnection.ClearAllPools();
    }

    // One row or none, for a query with a single parameter $x.
    private async Task<T?> QuerySingleAsync<T>(string sql, object value, Func<SqliteDataReader, T> map, CancellationToken cancellationToken)
        where T : class
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$x", value);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? map(reader) : null;
    }

    // Entries of one tenant: its rowid range, from an index on, optionally only the one with an event id.
    private async Task<IReadOnlyList<LogEntry>> QueryEntriesAsync(string tenantId, ulong fromIndex, Guid? eventId, int limit, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (_tenantNumbers.Find(connection, null, tenantId) is not { } tenantNumber)
        {
            return [];
        }

        using var command = connection.CreateCommand();
        command.CommandText = eventId is null
            ? "SELECT id, event_id, leaf, leaf_hash, received_at, purged_by FROM log_entries WHERE id BETWEEN $from AND $last ORDER BY id LIMIT $limit"
            : "SELECT id, event_id, leaf, leaf_hash, received_at, purged_by FROM log_entries WHERE event_id = $event AND id BETWEEN $from AND $last LIMIT $limit";
        command.Parameters.AddWithValue("$from", LogRowId.Of(tenantNumber, fromIndex));
        command.Parameters.AddWithValue("$last", LogRowId.Last(tenantNumber));
        command.Parameters.AddWithValue("$limit", limit);
        if (eventId is { } id)
        {
            command.Parameters.AddWithValue("$event", id.ToByteArray(bigEndian: true));
        }

        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var entries = new List<LogEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(new LogEntry(
                LogRowId.IndexOf(reader.GetInt64(0)), new Guid((byte[])reader[1], bigEndian: true), (byte[])reader[2], new Hash((byte[])reader[3]),
                new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero))
            { PurgedBy = reader.IsDBNull(5) ? null : (ulong)reader.GetInt64(5) });
        }

        return entries;
    }

    // SQLITE_FULL; or an I/O error (creating the -shm index or growing the WAL on open reports SQLITE_IOERR) while the
    // disk has less than the minimum free.
    private bool IsDiskFull(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 13 }
        || (exception is SqliteException { SqliteErrorCode: 10 } && _reserve.FreeBytes() < _minimumFreeBytes);

    // A start on a disk found full: the reserve is deleted to make room for the databases' WAL and index files, and the
    // store starts with appends refused (reads are served) until the space watcher finds room again.
    private void OpenOnFullDisk(Action open)
    {
        if (!Space.IsFull && _reserve.FreeBytes() < _minimumFreeBytes)
        {
            Space.MarkFull("start", $"{_reserve.FreeBytes() >> 20} MiB free in the data directory");
            _reserve.Release();
        }

        try
        {
            open();
        }
        catch (SqliteException e) when (IsDiskFull(e) && _reserve.Release())
        {
            Space.MarkFull("start", e.Message);
            open();
        }
    }

    // Leaves the full state only on proof of room: the free space of the data directory, measured every second. On the
    // way out the WALs are checkpointed and truncated (what accumulated while full goes back into the database files,
    // and the WAL files start over) and a released reserve is written again; only then do appends resume.
    private async Task WatchSpaceAsync(TimeProvider clock, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), clock);
        var busyTruncations = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                try
                {
                    var free = _reserve.FreeBytes();
                    if (Space.IsFull && free >= _reserve.NeededToResume(_minimumFreeBytes))
                    {
                        // A reader still on an old snapshot makes the checkpoint answer "busy" without an error: the
                        // next tick tries again, and after a few tries appends resume anyway (the WAL is then copied
                        // back by the periodic checkpoint), so a steady reader cannot keep the store refusing appends.
                        var truncated = await TruncateWalAsync(_writeConnection, stopping).ConfigureAwait(false)
                            & await TruncateWalAsync(_readModelWriter, stopping).ConfigureAwait(false);
                        if (!truncated && ++busyTruncations < MaxBusyTruncations)
                        {
                            continue;
                        }

                        busyTruncations = 0;
                        _reserve.Create();
                        Space.MarkAvailable($"{_reserve.FreeBytes() >> 20} MiB free; " + (truncated ? "WAL checkpointed and truncated" : "WAL checkpoint deferred: readers kept it busy"));
                    }
                    else if (!Space.IsFull && !_reserve.Exists && free >= _reserve.NeededToResume(_minimumFreeBytes))
                    {
                        // The first start with a reserve configured, or a start that had to spend it.
                        _reserve.Create();
                    }
                }
                catch (Exception e) when (e is SqliteException or IOException)
                {
                    // Still no room (or readers keep the WAL busy): the next tick measures again.
                    Space.TryMarkFull(e, "reclaiming space");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
    }

    // True when the WAL was fully copied back and truncated; false when readers kept the checkpoint busy (SQLite then
    // reports busy = 1 in the first column instead of failing).
    private static async Task<bool> TruncateWalAsync(WriteConnection writer, CancellationToken cancellationToken)
    {
        using var turn = await writer.TakeAsync(cancellationToken).ConfigureAwait(false);
        using var truncate = turn.Connection.CreateCommand();
        truncate.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        var busy = await truncate.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return Convert.ToInt64(busy, System.Globalization.CultureInfo.InvariantCulture) == 0;
    }

    // With wal_autocheckpoint off on every connection, WAL frames are copied back into the database files here, off
    // the commit path. PASSIVE never blocks the writer or readers, but under a steady stream of commits it never
    // finds the WAL fully copied when a commit starts, so the WAL would never start over and would grow without
    // bound (tens of GB while generating 10 M events). Past WalTruncateBytes the checkpoint therefore runs in the
    // writer's turn as TRUNCATE: appends wait for the frames copied since the last tick, and the file starts over.
    private async Task CheckpointWalAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(CheckpointEvery);
        // The read models' WAL is copied back only once it holds ReadModelWalCheckpointBytes: each checkpoint ends in an
        // fsync of many scattered pages, which delays the log's commits queued behind it on the same disk (single-event
        // ingest p99 77 ms with a checkpoint every tick, 25 ms without, measured with bench/Atp.LoadTest).
        (SqliteConnections File, WriteConnection Writer, long PassiveFrom)[] files =
            [(_connections, _writeConnection, 0), (_readModelConnections, _readModelWriter, ReadModelWalCheckpointBytes)];
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                foreach (var (file, writer, passiveFrom) in files)
                {
                    var wal = new FileInfo(file.DatabasePath + "-wal");
                    if (passiveFrom > 0 && (!wal.Exists || wal.Length < passiveFrom))
                    {
                        continue;
                    }

                    try
                    {
                        using (var connection = await file.OpenAsync(stopping).ConfigureAwait(false))
                        using (var command = connection.CreateCommand())
                        {
                            command.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                            await command.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
                        }

                        wal.Refresh();
                        if (wal is { Exists: true, Length: > WalTruncateBytes })
                        {
                            using var turn = await writer.TakeAsync(stopping).ConfigureAwait(false);
                            using var truncate = turn.Connection.CreateCommand();
                            truncate.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
                            await truncate.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
                        }
                    }
                    catch (SqliteException)
                    {
                        // Busy or locked: the next tick tries again; the WAL only grows meanwhile.
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<string>))]
internal sealed partial class StringListJson : System.Text.Json.Serialization.JsonSerializerContext;
