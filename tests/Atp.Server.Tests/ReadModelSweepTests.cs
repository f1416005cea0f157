using System.Diagnostics.Metrics;
using System.Net;
using Atp.Server.Query;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.Server.Tests;

/// <summary>
/// The read-model sweep in a running server: on the embedded engine it compares every projected entry with the log
/// and counts them on the <c>Atp.Projection</c> meter (no mismatch for intact read models); on PostgreSQL its passes
/// have nothing to compare. Its damage path is tested with a real byte flip in <see cref="ReadModelRecoveryTests"/>.
/// </summary>
public sealed class ReadModelSweepTests
{
    private const string Tenant = "rmsweep";

    [Fact]
    public async Task The_read_model_sweep_counts_its_progress_and_no_mismatch_for_intact_read_models()
    {
        long rows = 0, passes = 0, mismatches = 0;

        // Only this server's instruments (its meter factory is their scope): other servers of the run sweep too.
        object? scope = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ProjectionService.MeterName && instrument.Name.StartsWith("atp.projection.sweep.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (!ReferenceEquals(instrument.Meter.Scope, Volatile.Read(ref scope)))
            {
                return;
            }

            switch (instrument.Name)
            {
                case "atp.projection.sweep.rows": Interlocked.Add(ref rows, value); break;
                case "atp.projection.sweep.passes": Interlocked.Add(ref passes, value); break;
                case "atp.projection.sweep.mismatches": Interlocked.Add(ref mismatches, value); break;
            }
        });
        listener.Start();

        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Query:ReadModelSweep:RowsPerSecond"] = "100000",
            ["Atp:Query:ReadModelSweep:PauseBetweenPasses"] = "00:00:00.100",
        });
        Volatile.Write(ref scope, server.Services.GetRequiredService<IMeterFactory>());
        var key = await server.CreateTenantWithKeyAsync(Tenant);
        using var client = server.ClientWithKey(key);
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync($"/v1/tenants/{Tenant}/events", ServerFixture.Json(ServerFixture.Batch(10)))).StatusCode);

        // Two passes after the events were projected: the later one compared all ten.
        var expected = TestStorage.IsPostgres ? 0 : 10;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var passesAtStart = Interlocked.Read(ref passes);
        while ((Interlocked.Read(ref passes) < passesAtStart + 3 || Interlocked.Read(ref rows) < expected) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(Interlocked.Read(ref passes) >= passesAtStart + 3, $"the read-model sweep completed {passes} passes");
        Assert.True(TestStorage.IsPostgres ? Interlocked.Read(ref rows) == 0 : Interlocked.Read(ref rows) >= 10, $"the read-model sweep compared {rows} entries");
        Assert.Equal(0, Interlocked.Read(ref mismatches));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    public async Task A_read_model_sweep_rate_below_one_is_refused_at_start(string rate)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Query:ReadModelSweep:RowsPerSecond"] = rate });
        });

        Assert.Contains("RowsPerSecond", error.ToString(), StringComparison.Ordinal);
    }
}
