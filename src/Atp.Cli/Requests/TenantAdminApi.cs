using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;

namespace Atp.Cli.Requests;

/// <summary>
/// One call of a tenant's admin API on a running cell (<c>/v1/tenants/{tenant}/…</c>: holds, erasures), with the
/// caller's tenant-admin (or platform-admin) key from <c>ATP_API_KEY</c>, never an argument. The server's answer is
/// printed as it came, its status on standard error; exit 0 on a 2xx answer, 1 on another.
/// </summary>
internal static class TenantAdminApi
{
    public static Option<string> UrlOption() => new("--url") { Description = "The cell's base URL, e.g. http://127.0.0.1:8080", Required = true };

    public static Option<string> TenantOption() => new("--tenant") { Description = "The tenant id", Required = true };

    public static Option<string> ReasonOption(string description) => new("--reason") { Description = description, Required = true };

    /// <summary>Sends <paramref name="json"/> (or nothing) to <c>{baseUrl}/v1/tenants/{tenant}/{path}</c>.</summary>
    public static async Task<int> CallAsync(
        CliEnvironment environment, HttpMethod method, string baseUrl, string tenant, string path, string? json, ParseResult parse, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(baseUrl);
        ArgumentNullException.ThrowIfNull(parse);
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        if (!Uri.TryCreate($"{baseUrl.TrimEnd('/')}/v1/tenants/{Uri.EscapeDataString(tenant)}/{path}", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliInputException($"'{baseUrl}' is not an absolute http:// or https:// URL");
        }

        var apiKey = environment.Variable(RequestCommand.ApiKeyVariable);
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            throw new CliInputException($"set {RequestCommand.ApiKeyVariable} to a tenant-admin or platform-admin API key (it is never taken from an argument)");
        }

        using var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey.Trim());
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        try
        {
            using var response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            await error.WriteLineAsync($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd()).ConfigureAwait(false);
            await output.WriteLineAsync(text).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? ExitCodes.Success : ExitCodes.HttpError;
        }
        catch (HttpRequestException e)
        {
            throw new CliInputException($"no response from {uri}: {e.Message}");
        }
    }
}
