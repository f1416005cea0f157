using System.Text;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;
using Atp.Storage.Postgres;
using Atp.Storage.Postgres.Tests;
using Atp.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Atp.Cli.Tests;

/// <summary>
/// A real store of either engine, written through the engine's own store (two tenants, 21 entries each, a checkpoint
/// signed after every 7), then closed; the tests alter its rows behind its back as a disk fault or an intruder would.
/// </summary>
internal abstract class AuditedStore : IAsyncDisposable
{
    public const string CellOrigin = "atp.test/audit-cell-1";
    public static readonly string[] Tenants = ["acme", "globex"];
    public const int EntriesPerTenant = 21;
    public const int CheckpointEvery = 7;

    protected AuditedStore(NoteSigner signer) => Signer = signer;

    public NoteSigner Signer { get; }

    /// <summary>The arguments after <c>atp verify store</c> that audit this store.</summary>
    public abstract string[] VerifyArguments { get; }

    public static async Task<AuditedStore> CreateAsync(string engine)
    {
        var signer = NoteSigner.Generate(CellOrigin);
        AuditedStore store = engine == "sqlite" ? SqliteAuditedStore.Create(signer) : await PostgresAuditedStore.CreateAsync(signer);
        await store.PopulateAsync();
        return store;
    }

    public abstract Task<byte[]> ReadBlobAsync(string column, string tenant, ulong index);

    public abstract Task WriteBlobAsync(string column, string tenant, ulong index, byte[] value);

    public abstract Task<byte[]> ReadRootAsync(string tenant);

    public abstract Task WriteRootAsync(string tenant, byte[] root);

    public abstract Task<string> ReadCheckpointAsync(string tenant, ulong size);

    public abstract Task WriteCheckpointAsync(string tenant, ulong size, string note);

    public async Task FlipByteAsync(string column, string tenant, ulong index, int offset)
    {
        var bytes = await ReadBlobAsync(column, tenant, index);
        bytes[offset] ^= 0x01;
        await WriteBlobAsync(column, tenant, index, bytes);
    }

    public virtual ValueTask DisposeAsync()
    {
        Signer.Dispose();
        return ValueTask.CompletedTask;
    }

    protected abstract Task<(ILogStore Log, ITenantStore Tenants, IAsyncDisposable Owner)> OpenAsync();

    private async Task PopulateAsync()
    {
        var (log, tenants, owner) = await OpenAsync();
        await using (owner)
        {
            foreach (var tenant in Tenants)
            {
                Assert.True(await tenants.TryCreateTenantAsync(
                    new Tenant(tenant, tenant, Tenant.DefaultEdition, "local", new Residency(Residency.Permitted, []), Tenant.Active, DateTimeOffset.UtcNow), CancellationToken.None));
                for (var batch = 0; batch < EntriesPerTenant / CheckpointEvery; batch++)
                {
                    var entries = Enumerable.Range(batch * CheckpointEvery, CheckpointEvery).Select(i =>
                    {
                        var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes($"{{\"action\":\"document.update\",\"index\":{i},\"tenant\":\"{tenant}\"}}"));
                        return new PendingEntry(Guid.NewGuid(), false, leaf, MerkleHasher.HashLeaf(leaf), null, DateTimeOffset.UtcNow);
                    }).ToList();
                    Assert.IsType<Appended>(await log.AppendAsync(new AppendRequest(tenant, entries, null), CancellationToken.None));
                    Assert.True(await log.SealAsync(
                        tenant, (head, _) => Task.FromResult<string?>(new Checkpoint($"{CellOrigin}/{tenant}", head.Size, head.Root).Sign(Signer).ToString()), DateTimeOffset.UtcNow, CancellationToken.None));
                }
            }
        }
    }

    private sealed class SqliteAuditedStore(NoteSigner signer, string directory) : AuditedStore(signer)
    {
        public override string[] VerifyArguments => ["--data", directory];

        public static SqliteAuditedStore Create(NoteSigner signer)
        {
            var directory = Directory.CreateTempSubdirectory("atp-audit-").FullName;
            Directory.CreateDirectory(Path.Combine(directory, "keys"));
            File.WriteAllText(Path.Combine(directory, "keys", "cell-signing.key"), signer.ExportSignerKey() + "\n");
            return new SqliteAuditedStore(signer, directory);
        }

        protected override Task<(ILogStore, ITenantStore, IAsyncDisposable)> OpenAsync()
        {
            var store = new SqliteStore(Options.Create(new SqliteStoreOptions { DataDirectory = directory }), TimeProvider.System, NullLogger<SqliteStore>.Instance);
            return Task.FromResult<(ILogStore, ITenantStore, IAsyncDisposable)>((store, store, store));
        }

        public override Task<byte[]> ReadBlobAsync(string column, string tenant, ulong index) =>
            Task.FromResult((byte[])Scalar($"SELECT {column} FROM log_entries WHERE id = {RowId(tenant, index)}")!);

        public override Task WriteBlobAsync(string column, string tenant, ulong index, byte[] value) =>
            Execute($"UPDATE log_entries SET {column} = $v WHERE id = {RowId(tenant, index)}", value);

        public override Task<byte[]> ReadRootAsync(string tenant) => Task.FromResult((byte[])Scalar($"SELECT root FROM tree_heads WHERE tenant_id = '{tenant}'")!);

        public override Task WriteRootAsync(string tenant, byte[] root) => Execute($"UPDATE tree_heads SET root = $v WHERE tenant_id = '{tenant}'", root);

        public override Task<string> ReadCheckpointAsync(string tenant, ulong size) =>
            Task.FromResult((string)Scalar($"SELECT note FROM checkpoints WHERE tenant_id = '{tenant}' AND size = {size}")!);

        public override Task WriteCheckpointAsync(string tenant, ulong size, string note) =>
            Execute($"UPDATE checkpoints SET note = $v WHERE tenant_id = '{tenant}' AND size = {size}", note);

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }

        private long RowId(string tenant, ulong index) => ((long)Scalar($"SELECT num FROM tenants WHERE id = '{tenant}'")! << 40) | (long)index;

        private object? Scalar(string sql)
        {
            using var connection = Connect();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            return command.ExecuteScalar();
        }

        private Task Execute(string sql, object value)
        {
            using var connection = Connect();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$v", value);
            Assert.Equal(1, command.ExecuteNonQuery());
            return Task.CompletedTask;
        }

        private SqliteConnection Connect()
        {
            var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(directory, "atp.db"), Pooling = false }.ToString());
            connection.Open();
            return connection;
        }
    }

    private sealed class PostgresAuditedStore(NoteSigner signer, PostgresServer server, string database) : AuditedStore(signer)
    {
        private string Owner => server.ConnectionString(database, PostgresServer.OwnerRole);

        public override string[] VerifyArguments => ["--postgres", Owner, "--key", Signer.Verifier.VerifierKey];

        public static async Task<PostgresAuditedStore> CreateAsync(NoteSigner signer)
        {
            var server = await PostgresServer.GetAsync();
            return new PostgresAuditedStore(signer, server, await server.CreateDatabaseAsync(migrated: true));
        }

        protected override Task<(ILogStore, ITenantStore, IAsyncDisposable)> OpenAsync()
        {
            var store = new PostgresStore(
                Options.Create(new PostgresStoreOptions { ConnectionString = server.ConnectionString(database, PostgresServer.AppRole) }), TimeProvider.System, NullLogger<PostgresStore>.Instance);
            return Task.FromResult<(ILogStore, ITenantStore, IAsyncDisposable)>((store, store, store));
        }

        public override async Task<byte[]> ReadBlobAsync(string column, string tenant, ulong index) =>
            (byte[])(await ScalarAsync($"SELECT {column} FROM atp.log_entries WHERE tenant_id = $1 AND idx = $2", tenant, (long)index))!;

        // As the owner: the application role may not UPDATE log_entries at all.
        public override Task WriteBlobAsync(string column, string tenant, ulong index, byte[] value) =>
            ExecuteAsync($"UPDATE atp.log_entries SET {column} = $3 WHERE tenant_id = $1 AND idx = $2", tenant, (long)index, value);

        public override async Task<byte[]> ReadRootAsync(string tenant) => (byte[])(await ScalarAsync("SELECT root FROM atp.tree_heads WHERE tenant_id = $1", tenant))!;

        public override Task WriteRootAsync(string tenant, byte[] root) => ExecuteAsync("UPDATE atp.tree_heads SET root = $2 WHERE tenant_id = $1", tenant, root);

        public override async Task<string> ReadCheckpointAsync(string tenant, ulong size) =>
            (string)(await ScalarAsync("SELECT note FROM atp.checkpoints WHERE tenant_id = $1 AND size = $2", tenant, (long)size))!;

        public override Task WriteCheckpointAsync(string tenant, ulong size, string note) =>
            ExecuteAsync("UPDATE atp.checkpoints SET note = $3 WHERE tenant_id = $1 AND size = $2", tenant, (long)size, note);

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            await server.DropDatabaseAsync(database);
        }

        private async Task<object?> ScalarAsync(string sql, params object[] values)
        {
            await using var connection = new NpgsqlConnection(Owner);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            return await command.ExecuteScalarAsync();
        }

        private async Task ExecuteAsync(string sql, params object[] values)
        {
            await using var connection = new NpgsqlConnection(Owner);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
    }
}
