using Atp.Core.Storage;
using Atp.Server.Storage;
using Microsoft.AspNetCore.Diagnostics;

namespace Atp.Server.Problems;

/// <summary>
/// Any request whose write meets a full disk (an admin action recorded in the platform audit log, a tenant or key
/// created) answers 503 <c>storage-full</c> with <c>Retry-After</c>, like an append, instead of a 500 with a stack
/// trace in the log; the store's space state logs the change once.
/// </summary>
internal sealed class StorageFullExceptionHandler(StorageEngine engine) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is not StorageFullException && !engine.Space.TryMarkFull(exception, "request"))
        {
            return false;
        }

        httpContext.Response.Headers.RetryAfter = ((int)StorageSpace.RetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await Problem.StorageFull("The store's disk is full; nothing was stored. Retry later.").ExecuteAsync(httpContext).ConfigureAwait(false);
        return true;
    }
}
