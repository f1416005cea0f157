namespace Atp.Server.Export;

/// <summary>Signed ndjson bundles: export jobs of format ndjson, and the daily bundles.</summary>
internal sealed class ExportBundles(TimeProvider clock)
{
    public Task<FinishedExport> RunJobAsync(ExportJob job, ExportProgress progress, CancellationToken cancellationToken) =>
        throw new ExportFailedException($"ndjson bundles are not available in this build ({clock.GetUtcNow():O}).");

    public Task RunDailyAsync(CancellationToken cancellationToken) => clock is null ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;
}
