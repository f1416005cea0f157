using Microsoft.AspNetCore.Diagnostics;

namespace Atp.Server.Problems;

/// <summary>
/// Kestrel's own refusals of a request it cannot read — a body trickled below the minimum data rate (408), a body
/// over the size limit (413), a malformed chunk or framing (400) — surface as <see cref="BadHttpRequestException"/>
/// when an endpoint or the gateway reads the body. They are the client's fault: a 4xx problem, never a 500.
/// </summary>
internal sealed class BadRequestExceptionHandler : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is not BadHttpRequestException bad || httpContext.Response.HasStarted)
        {
            return false;
        }

        var result = bad.StatusCode switch
        {
            StatusCodes.Status408RequestTimeout => Problem.Create(408, "request-timeout", "The request body arrived too slowly", "The request body arrived more slowly than the server's minimum data rate; send it at once."),
            StatusCodes.Status413PayloadTooLarge => Problem.TooLarge(bad.Message),
            _ => Problem.Create(bad.StatusCode is >= 400 and < 500 ? bad.StatusCode : 400, "malformed-request", "The request could not be read", bad.Message),
        };
        await result.ExecuteAsync(httpContext).ConfigureAwait(false);
        return true;
    }
}
