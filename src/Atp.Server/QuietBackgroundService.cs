namespace Atp.Server;

/// <summary>
/// A background service whose cancellation on shutdown is not an error: when the host stops, or fails to start (a
/// taken port), its loop ends without the host logging an OperationCanceledException and its stack trace.
/// </summary>
internal abstract class QuietBackgroundService : BackgroundService
{
    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: nothing to report.
        }
    }

    /// <summary>The service's loop; it ends by returning or by cancellation of <paramref name="stoppingToken"/>.</summary>
    protected abstract Task RunAsync(CancellationToken stoppingToken);
}
