using Atp.Storage.Contract;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Atp.Storage.Sqlite.Tests;

/// <summary>The storage contract on the embedded engine: a real SQLite file in a fresh temporary directory per test.</summary>
public sealed class SqliteLogStoreContractTests : LogStoreContract<SqliteStore>
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-sqlite-contract-").FullName;

    protected override Task<SqliteStore> OpenStoreAsync(TimeProvider clock) =>
        Task.FromResult(new SqliteStore(
            Options.Create(new SqliteStoreOptions { DataDirectory = _directory }), clock, NullLogger<SqliteStore>.Instance));

    protected override Task DeleteStorageAsync()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        return Task.CompletedTask;
    }
}
