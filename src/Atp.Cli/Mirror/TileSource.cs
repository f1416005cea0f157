using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atp.Core.Tiles;

namespace Atp.Cli.Mirror;

/// <summary>
/// The server side of a mirror: one tenant's log prefix (<c>/v1/tenants/{tenant}/log/</c>) read with a bearer API key.
/// A 429 is waited out (its Retry-After) rather than failing a long mirror; any other non-2xx answer is unusable input.
/// </summary>
internal sealed class TileSource(HttpClient http, Uri baseUrl, string tenant) : IDisposable
{
    private const int MaxRateLimitWaits = 30;

    public Uri Prefix { get; } = new(baseUrl, $"v1/tenants/{Uri.EscapeDataString(tenant)}/log/");

    public static TileSource Create(Uri baseUrl, string tenant, string apiKey)
    {
        var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("atp-mirror", "1"));
        return new TileSource(http, baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/"), tenant);
    }

    public Task<byte[]> CheckpointAsync(CancellationToken cancellationToken) => GetAsync(new Uri(Prefix, "checkpoint"), cancellationToken);

    public Task<byte[]> TileAsync(TileAddress tile, CancellationToken cancellationToken) => GetAsync(new Uri(Prefix, tile.Path), cancellationToken);

    /// <summary>The cell's published verifier keys (<c>GET /v1/log/keys</c>, anonymous).</summary>
    public async Task<IReadOnlyList<string>> VerifierKeysAsync(CancellationToken cancellationToken)
    {
        var body = await GetAsync(new Uri(baseUrl, "v1/log/keys"), cancellationToken).ConfigureAwait(false);
        try
        {
            using var json = JsonDocument.Parse(body);
            return [.. json.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("verifierKey").GetString() ?? "")];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new CliInputException($"{baseUrl}v1/log/keys did not answer a key list: {e.Message}");
        }
    }

    private async Task<byte[]> GetAsync(Uri uri, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = await http.GetAsync(uri, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new CliInputException($"GET {uri}: {e.Message}");
            }

            using (response)
            {
                if (response.IsSuccessStatusCode)
                {
                    return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                }

                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < MaxRateLimitWaits)
                {
                    var wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : wait, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var detail = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                throw new CliInputException(string.Create(CultureInfo.InvariantCulture,
                    $"GET {uri}: {(int)response.StatusCode} {response.ReasonPhrase}: {detail[..Math.Min(detail.Length, 500)]}"));
            }
        }
    }

    public void Dispose() => http.Dispose();
}
