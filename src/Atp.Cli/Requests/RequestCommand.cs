using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using Atp.Core.Signatures;

namespace Atp.Cli.Requests;

/// <summary>
/// <c>atp request METHOD URL</c>: one call to the ATP HTTP API with the bearer key and, when a key id and signing
/// secret are available, an RFC 9421 signature (ATP profile). Credentials come from the environment or a file, never
/// from arguments, which other users can read in the process list. Exit 0 for 2xx, 1 for another status, 2 when no
/// response could be had.
/// </summary>
internal static class RequestCommand
{
    public const string ApiKeyVariable = "ATP_API_KEY";
    public const string KeyIdVariable = "ATP_KEY_ID";
    public const string SigningSecretVariable = "ATP_SIGNING_SECRET";
    private const string DefaultContentType = "application/json";

    /// <summary>Headers the signature produces; a user-supplied copy would contradict it.</summary>
    private static readonly string[] SignatureHeaders = [AtpRequestSignature.SignatureInputHeader, AtpRequestSignature.SignatureHeader, ContentDigest.HeaderName];

    private sealed record Arguments(
        string Method,
        string Url,
        string? Data,
        string[] Headers,
        string? ContentType,
        string? KeyId,
        FileInfo? SigningSecretFile,
        bool NoSign);

    private sealed record Signing(string KeyId, byte[] Secret);

    public static Command Create(CliEnvironment environment)
    {
        var method = new Argument<string>("method") { Description = "HTTP method, e.g. GET or POST" };
        var url = new Argument<string>("url") { Description = "Absolute http(s) URL, e.g. http://127.0.0.1:8080/v1/tenants/acme/events" };
        var data = new Option<string>("--data") { Description = "Send this file's bytes as the body ('-' reads standard input)" };
        var headers = new Option<string[]>("--header") { Description = "Extra header \"Name: value\" (repeatable)", Arity = ArgumentArity.OneOrMore };
        var contentType = new Option<string>("--content-type") { Description = $"Content-Type of the body (default {DefaultContentType} when there is --data)" };
        var keyId = new Option<string>("--key-id") { Description = $"API key id to sign with (default ${KeyIdVariable})" };
        var secretFile = new Option<FileInfo>("--signing-secret-file") { Description = $"File holding the key's base64 signing secret (default ${SigningSecretVariable})" };
        var noSign = new Option<bool>("--no-sign") { Description = "Send unsigned even when a key id and signing secret are available" };
        var command = new Command("request", $"Call the ATP API: bearer key from ${ApiKeyVariable}, HMAC request signature (RFC 9421) when a key id and signing secret are available.")
        {
            method, url, data, headers, contentType, keyId, secretFile, noSign,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            new Arguments(
                parse.GetValue(method)!,
                parse.GetValue(url)!,
                parse.GetValue(data),
                parse.GetValue(headers) ?? [],
                parse.GetValue(contentType),
                parse.GetValue(keyId),
                parse.GetValue(secretFile),
                parse.GetValue(noSign)),
            environment,
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error,
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(Arguments arguments, CliEnvironment environment, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var method = ParseMethod(arguments.Method);
        var uri = ParseUrl(arguments.Url);
        var signing = arguments.NoSign ? null : await ResolveSigningAsync(arguments, environment, cancellationToken).ConfigureAwait(false);
        var body = arguments.Data switch
        {
            null => null,
            "-" => await InputFiles.ReadStreamAsync(environment.OpenStandardInput(), "standard input", cancellationToken).ConfigureAwait(false),
            var path => await InputFiles.ReadAsync(new FileInfo(path), "data", cancellationToken).ConfigureAwait(false),
        };

        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = ParseContentType(arguments.ContentType ?? DefaultContentType);
        }
        else if (arguments.ContentType is not null)
        {
            throw new CliInputException("--content-type needs --data");
        }

        AddHeaders(request, arguments.Headers, signed: signing is not null);
        if (NonEmpty(environment.Variable(ApiKeyVariable)) is { } apiKey && !request.Headers.Contains("Authorization"))
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + apiKey.Trim());
        }

        if (signing is not null)
        {
            Sign(request, uri, body ?? [], signing, environment.Clock);
        }

        return await SendAsync(request, output, error, cancellationToken).ConfigureAwait(false);
    }

    private static HttpMethod ParseMethod(string method)
    {
        // Upper-cased because the standard methods are, and the signature covers the method exactly as sent.
        try
        {
            return new HttpMethod(method.ToUpperInvariant());
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new CliInputException($"'{method}' is not an HTTP method");
        }
    }

    private static Uri ParseUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliInputException($"'{url}' is not an absolute http:// or https:// URL");
        }

        return uri;
    }

    private static MediaTypeHeaderValue ParseContentType(string contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var parsed) ? parsed : throw new CliInputException($"--content-type '{contentType}' is not a media type");

    /// <summary>Options win over the environment, item by item; a key id without a secret (or the reverse) is a mistake, not "unsigned".</summary>
    private static async Task<Signing?> ResolveSigningAsync(Arguments arguments, CliEnvironment environment, CancellationToken cancellationToken)
    {
        var keyId = arguments.KeyId ?? NonEmpty(environment.Variable(KeyIdVariable));
        string? encoded;
        string source;
        if (arguments.SigningSecretFile is { } file)
        {
            encoded = Encoding.UTF8.GetString(await InputFiles.ReadAsync(file, "signing secret", cancellationToken).ConfigureAwait(false));
            source = $"signing secret file '{file.FullName}'";
        }
        else
        {
            encoded = NonEmpty(environment.Variable(SigningSecretVariable));
            source = SigningSecretVariable;
        }

        if (keyId is null && encoded is null)
        {
            return null;
        }

        if (keyId is null || encoded is null)
        {
            throw new CliInputException(
                $"signing needs both a key id (--key-id or {KeyIdVariable}) and a secret (--signing-secret-file or {SigningSecretVariable}); use --no-sign to send unsigned");
        }

        // The message names where the secret came from, never its content.
        return AtpRequestSignature.TryDecodeSecret(encoded, out var secret)
            ? new Signing(keyId, secret)
            : throw new CliInputException($"{source} does not hold a signing secret (standard base64 of {AtpRequestSignature.SecretLength} bytes)");
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static void AddHeaders(HttpRequestMessage request, string[] headers, bool signed)
    {
        foreach (var header in headers)
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            var name = colon > 0 ? header[..colon].Trim() : "";
            if (name.Length == 0 || name.Any(c => c is <= ' ' or > '~'))
            {
                throw new CliInputException($"--header '{header}' is not \"Name: value\"");
            }

            if (signed && SignatureHeaders.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                throw new CliInputException($"--header {name} would contradict the request signature; use --no-sign to send your own");
            }

            var value = header[(colon + 1)..].Trim();
            if (request.Content is { } content && name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                content.Headers.Remove(name);
                if (!content.Headers.TryAddWithoutValidation(name, value))
                {
                    throw new CliInputException($"--header '{name}' cannot be sent");
                }
            }
            else if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                throw new CliInputException($"--header '{name}' cannot be sent{(name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) ? " without --data" : "")}");
            }
        }
    }

    private static void Sign(HttpRequestMessage request, Uri uri, byte[] body, Signing signing, TimeProvider clock)
    {
        // What HttpClient puts on the wire: scheme, host[:port] (default port omitted), escaped path and query, no
        // fragment or user info. The server rebuilds exactly this from the request it receives.
        var targetUri = uri.GetComponents(UriComponents.HttpRequestUrl, UriFormat.UriEscaped);
        AtpSignedHeaders headers;
        try
        {
            headers = AtpRequestSignature.Sign(signing.Secret, signing.KeyId, request.Method.Method, targetUri, body, clock.GetUtcNow().ToUnixTimeSeconds(), AtpRequestSignature.NewNonce());
        }
        catch (ArgumentException)
        {
            throw new CliInputException($"key id '{signing.KeyId}' cannot be signed with: it must be 1 to {AtpRequestSignature.MaxParameterLength} visible ASCII characters");
        }

        request.Headers.TryAddWithoutValidation(AtpRequestSignature.SignatureInputHeader, headers.SignatureInput);
        request.Headers.TryAddWithoutValidation(AtpRequestSignature.SignatureHeader, headers.Signature);
        if (headers.ContentDigest is { } digest)
        {
            request.Content!.Headers.TryAddWithoutValidation(ContentDigest.HeaderName, digest);
        }
    }

    private static async Task<int> SendAsync(HttpRequestMessage request, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        // No automatic redirects: a redirected request would carry a signature over the old URI; show the 3xx instead.
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            await error.WriteLineAsync($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd()).ConfigureAwait(false);
            await output.WriteAsync(text).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? ExitCodes.Success : ExitCodes.HttpError;
        }
        catch (HttpRequestException e)
        {
            throw new CliInputException($"no response from {request.RequestUri}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliInputException($"no response from {request.RequestUri} within {client.Timeout.TotalSeconds:0} s");
        }
    }
}
