using Atp.Integrity;
using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Postgres.Tests;

/// <summary>
/// The storage contract on the scale-out engine: a real PostgreSQL, connected as the application role (row-level
/// security in force). The class's database is emptied after each test.
/// </summary>
public sealed class PostgresLogStoreContractTests(PostgresDatabase database) : LogStoreContract<PostgresStore>, IClassFixture<PostgresDatabase>
{
    protected override Task<PostgresStore> OpenStoreAsync(TimeProvider clock) =>
        Task.FromResult(new PostgresStore(
            Options.Create(new PostgresStoreOptions { ConnectionString = database.AppConnectionString }), clock, NullLogger<PostgresStore>.Instance));

    protected override Task DeleteStorageAsync() => database.TruncateAsync();

    protected override Task RedeliverOutboxAsync(string tenantId, ulong first, ulong last) =>
        database.ExecuteAsOwnerAsync($"INSERT INTO atp.outbox (tenant_id, first_idx, last_idx) VALUES ('{tenantId}', {first}, {last})");

    protected override Task WipeReadModelsAsync() => database.ExecuteAsOwnerAsync("DELETE FROM atp.event_index;");

    protected override Task FlipNodeBitAsync(string tenantId, NodeId node)
    {
        var leaf = ((node.Index + 1) << node.Level) - 1;
        var offset = (node.Level - 1) * Hash.Size;
        return database.ExecuteAsOwnerAsync($"UPDATE atp.log_entries SET nodes = set_byte(nodes, {offset}, get_byte(nodes, {offset}) # 1) WHERE tenant_id = '{tenantId}' AND idx = {leaf}");
    }

    protected override Task AlterHeadRootAsync(string tenantId) =>
        database.ExecuteAsOwnerAsync($"UPDATE atp.tree_heads SET root = set_byte(root, 0, get_byte(root, 0) # 1) WHERE tenant_id = '{tenantId}'");
}
