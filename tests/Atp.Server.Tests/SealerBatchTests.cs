using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Integrity;
using Atp.Server.Integrity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atp.Server.Tests;

/// <summary>The sealer's batches (<c>Atp:Integrity:SealBatchSize</c>): one pass seals every grown log, batch by batch.</summary>
public sealed class SealerBatchTests
{
    [Fact]
    public async Task One_pass_seals_every_grown_log_across_several_batches_with_checkpoints_that_verify()
    {
        // Only the pass at start runs on its own; the test's passes are the ones that seal the appends.
        await using var server = await ServerFixture.StartAsync(checkpointInterval: "01:00:00", settings: new Dictionary<string, string?> { ["Atp:Integrity:SealBatchSize"] = "2" });
        var tenants = Enumerable.Range(0, 5).Select(i => $"batch-{i}").ToArray();
        var keys = new Dictionary<string, string>();
        foreach (var tenant in tenants)
        {
            keys[tenant] = await server.CreateTenantWithKeyAsync(tenant);
        }

        var sealer = server.Services.GetRequiredService<CheckpointSealer>();
        await sealer.SealAsync(CancellationToken.None);
        for (var i = 0; i < tenants.Length; i++)
        {
            using var client = server.ClientWithKey(keys[tenants[i]]);
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsync($"/v1/tenants/{tenants[i]}/events", ServerFixture.Json(ServerFixture.Batch(i + 1)))).StatusCode);
        }

        using var admin = server.Admin;
        var verifier = NoteVerifier.Parse((await admin.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);

        Assert.Equal(tenants.Length, await sealer.SealAsync(CancellationToken.None));

        for (var i = 0; i < tenants.Length; i++)
        {
            using var client = server.ClientWithKey(keys[tenants[i]]);
            var note = await client.GetStringAsync($"/v1/tenants/{tenants[i]}/log/checkpoint");
            Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint).IsValid, note);
            Assert.Equal((ulong)(i + 1), checkpoint!.Size);
            Assert.Equal(await server.TreeSizeAsync(tenants[i]), checkpoint.Size);
        }

        // Nothing grew: the next pass finds nothing to seal.
        Assert.Equal(0, await sealer.SealAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("10001")]
    public void A_seal_batch_size_out_of_range_is_a_configuration_error(string size)
    {
        var data = Directory.CreateTempSubdirectory("atp-server-").FullName;
        try
        {
            var failure = Assert.Throws<OptionsValidationException>(() =>
            {
                var app = AtpServer.Build([$"--Atp:DataDirectory={data}", $"--Atp:Integrity:SealBatchSize={size}"]);
                try
                {
                    _ = app.Services.GetRequiredService<IOptions<AtpOptions>>().Value;
                }
                finally
                {
                    ((IDisposable)app).Dispose();
                }
            });
            Assert.Contains("Atp:Integrity:SealBatchSize", failure.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
