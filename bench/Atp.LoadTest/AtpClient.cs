using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Atp.LoadTest;

/// <summary>A tenant created for the run, with its events:write key (also a signing key: id and HMAC secret).</summary>
internal sealed record LoadTenant(string Id, Uri EventsUri, string WriteKey, string KeyId, byte[] SigningSecret);

/// <summary>How the load generator authenticates: bearer API key, RFC 9421 signed request, or none (bench-only trusted header).</summary>
internal enum AuthMode
{
    Bearer,
    Signed,
    None,
}

/// <summary>The HTTP side: tenant and key set-up, and one ingestion request as a closed-loop operation.</summary>
internal sealed class AtpClient(HttpClient http, Uri baseUrl, bool announceFirstProblem = true)
{
    private const int MaxReportedProblems = 5;
    private readonly object _problemLock = new();
    private readonly List<string> _problems = [];
    private int _problemCount;

    /// <summary>The first few failures (status and body, or exception), in order.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problemLock)
            {
                return [.. _problems];
            }
        }
    }

    public static HttpClient CreateHttpClient(int clients) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = clients + 8,
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        })
        {
            Timeout = TimeSpan.FromSeconds(60),
            DefaultRequestVersion = HttpVersion.Version11,
        };

    /// <summary>Creates the tenants (platform admin) and one events:write key per tenant.</summary>
    /// <summary>Every per-tenant limit at its maximum: the load test measures the engine, not the limiter.</summary>
    public static readonly object LiftedLimits = new
    {
        ingestPerSecond = 10_000_000, queryPerSecond = 10_000_000, ingestEventsPerSecond = 100_000_000, ingestBytesPerSecond = int.MaxValue, readCostPerSecond = 10_000_000,
    };

    public async Task<LoadTenant[]> CreateTenantsAsync(string adminKey, int count, CancellationToken cancellationToken)
    {
        // Unique per run, so --url runs against a long-lived server never collide.
        var run = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        var tenants = new LoadTenant[count];

        // A few at a time: 10,000 tenants one after another would take minutes (each creation is a durable write).
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (i, cancellationToken) =>
        {
            var id = $"loadtest-{run}-{i}";
            using (var create = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, "v1/tenants")))
            {
                create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
                create.Content = JsonContent.Create(new { id, name = $"Load test tenant {i} ({run})", edition = "default", residency = new { mode = "strict", allowedRegions = Array.Empty<string>() } });
                using var response = await http.SendAsync(create, cancellationToken);
                await ExpectCreatedAsync(response, $"POST /v1/tenants ({id})", cancellationToken);
            }

            // The product's per-tenant limits (50 ingest requests/s, 2,000 events/s by default) would cap the run; a platform admin lifts them.
            using (var limits = new HttpRequestMessage(HttpMethod.Patch, new Uri(baseUrl, $"v1/tenants/{id}")))
            {
                limits.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
                limits.Content = JsonContent.Create(new { limits = LiftedLimits });
                using var response = await http.SendAsync(limits, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"PATCH /v1/tenants/{id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
                }
            }

            using (var key = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, $"v1/tenants/{id}/api-keys")))
            {
                key.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
                key.Content = JsonContent.Create(new { name = "atp-loadtest writer", scopes = new[] { "events:write" }, signing = true });
                using var response = await http.SendAsync(key, cancellationToken);
                await ExpectCreatedAsync(response, $"POST /v1/tenants/{id}/api-keys", cancellationToken);
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
                var secret = body.RootElement.GetProperty("key").GetString()
                    ?? throw new InvalidOperationException("The api-keys response has no key.");
                var signing = Convert.FromBase64String(body.RootElement.GetProperty("signingSecret").GetString()
                    ?? throw new InvalidOperationException("The api-keys response has no signing secret."));
                tenants[i] = new LoadTenant(id, new Uri(baseUrl, $"v1/tenants/{id}/events"), secret, body.RootElement.GetProperty("id").GetString()!, signing);
            }
        });

        return tenants;
    }

    /// <summary>
    /// POSTs one pre-built body. 201 is success; anything else (or a transport failure) is an error. The first
    /// response of each client is also checked to carry one receipt per event.
    /// </summary>
    public async Task<OpResult> SendAsync(LoadTenant tenant, byte[] body, int events, bool checkReceipts, CancellationToken cancellationToken, AuthMode auth = AuthMode.Bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, tenant.EventsUri);
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        switch (auth)
        {
            case AuthMode.Bearer:
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tenant.WriteKey);
                break;
            case AuthMode.Signed:
                var signed = Atp.Core.Signatures.AtpRequestSignature.Sign(
                    tenant.SigningSecret, tenant.KeyId, "POST", tenant.EventsUri.AbsoluteUri, body, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), Atp.Core.Signatures.AtpRequestSignature.NewNonce());
                request.Headers.TryAddWithoutValidation("Signature-Input", signed.SignatureInput);
                request.Headers.TryAddWithoutValidation("Signature", signed.Signature);
                request.Content.Headers.TryAddWithoutValidation("Content-Digest", signed.ContentDigest);
                break;
            case AuthMode.None:
                request.Headers.TryAddWithoutValidation(TrustedTenantHeader, tenant.Id);
                break;
        }

        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            if (response.StatusCode != HttpStatusCode.Created)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                RecordProblem($"{(int)response.StatusCode} {response.ReasonPhrase} ({response.Content.Headers.ContentType}): {Truncate(text, 600)}");
                return OpResult.Failed;
            }

            if (checkReceipts)
            {
                var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                using var receipts = JsonDocument.Parse(bytes);
                var received = receipts.RootElement.GetProperty("receipts").GetArrayLength();
                if (received != events)
                {
                    RecordProblem($"201 with {received} receipts for {events} events: {Truncate(System.Text.Encoding.UTF8.GetString(bytes), 600)}");
                    return OpResult.Failed;
                }
            }

            return new OpResult(true, events);
        }
        catch (HttpRequestException e)
        {
            RecordProblem($"transport error: {e.Message}");
            return OpResult.Failed;
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            RecordProblem($"timeout after {http.Timeout.TotalSeconds:0} s: {e.Message}");
            return OpResult.Failed;
        }
        catch (JsonException e)
        {
            RecordProblem($"201 with a body that is not receipts JSON: {e.Message}");
            return OpResult.Failed;
        }
    }

    /// <summary>Names the tenant to the bench-only host that skips authentication (see AuthOverheadRun).</summary>
    public const string TrustedTenantHeader = "X-Bench-Tenant";

    public int ProblemCount => Volatile.Read(ref _problemCount);

    private void RecordProblem(string problem)
    {
        Interlocked.Increment(ref _problemCount);
        lock (_problemLock)
        {
            if (_problems.Count < MaxReportedProblems)
            {
                _problems.Add(problem);
                if (_problems.Count == 1 && announceFirstProblem)
                {
                    Console.WriteLine($"  ! first failed request: {problem}");
                }
            }
        }
    }

    private static async Task ExpectCreatedAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (response.StatusCode != HttpStatusCode.Created)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new InvalidOperationException($"{what}: {(int)response.StatusCode} {response.ReasonPhrase}: {Truncate(text, 1000)}");
        }
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";
}
