using System.Buffers;
using System.Text.Json;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atp.Server;

/// <summary>
/// Reads request bodies with an explicit size limit (413 before anything is parsed), a media-type check (415) and
/// JSON errors as 400 problems — the same for every endpoint.
/// </summary>
internal static class JsonBody
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { MaxDepth = 64, AllowDuplicateProperties = false };

    /// <summary>The raw body, or a problem when it is not JSON or larger than <paramref name="maxBytes"/>.</summary>
    public static async Task<(ReadOnlyMemory<byte> Body, ProblemHttpResult? Problem)> ReadBytesAsync(HttpContext context, int maxBytes, CancellationToken cancellationToken)
    {
        var request = context.Request;
        if (!IsJson(request.ContentType))
        {
            return (default, Problem.UnsupportedMediaType());
        }

        // A signed request's body was already read once to check its Content-Digest.
        if (context.Items.TryGetValue(Gateway.ApiKeyAuthenticationHandler.VerifiedBodyItem, out var verified) && verified is ReadOnlyMemory<byte> verifiedBody)
        {
            return verifiedBody.Length > maxBytes
                ? (default, Problem.TooLarge($"The body is {verifiedBody.Length} bytes; at most {maxBytes} are accepted."))
                : Utf8OrProblem(verifiedBody);
        }

        if (request.ContentLength > maxBytes)
        {
            return (default, Problem.TooLarge($"The body is {request.ContentLength} bytes; at most {maxBytes} are accepted."));
        }

        var body = await ReadLimitedAsync(request, maxBytes, cancellationToken).ConfigureAwait(false);
        return body is { } read ? Utf8OrProblem(read) : (default, Problem.TooLarge($"The body is larger than {maxBytes} bytes."));
    }

    // System.Text.Json parses strings without checking their UTF-8 and only fails when one is decoded, deep inside
    // whatever handles the request; checking the whole body once (vectorised) makes every such body a 400 up front.
    private static (ReadOnlyMemory<byte> Body, ProblemHttpResult? Problem) Utf8OrProblem(ReadOnlyMemory<byte> body) =>
        System.Text.Unicode.Utf8.IsValid(body.Span)
            ? (body, null)
            : (default, Problem.MalformedJson("The body is not UTF-8 text (RFC 8259 §8.1)."));

    /// <summary>The whole body, or null when it is longer than <paramref name="maxBytes"/> (reading stops there).</summary>
    public static async Task<ReadOnlyMemory<byte>?> ReadLimitedAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 16 * 1024, maxBytes) + 1);
        while (true)
        {
            // Sized from Content-Length (+1 to notice a longer body), so a well-behaved request is read without regrowth.
            var read = await request.Body.ReadAsync(buffer.GetMemory(1), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return buffer.WrittenMemory;
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > maxBytes)
            {
                return null;
            }
        }
    }

    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadAsync<T>(HttpContext context, int maxBytes, CancellationToken cancellationToken)
        where T : class
    {
        var (body, problem) = await ReadBytesAsync(context, maxBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return (null, problem);
        }

        try
        {
            var value = JsonSerializer.Deserialize<T>(body.Span, Options);
            return value is null ? (null, Problem.MalformedJson("The body must be a JSON object.")) : (value, null);
        }
        catch (JsonException e)
        {
            return (null, Problem.MalformedJson(e.Message));
        }
    }

    // The media type is parsed, not matched by prefix: application/json or application/<anything>+json, with any parameters.
    private static bool IsJson(string? contentType) =>
        Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.Type.Equals("application", StringComparison.OrdinalIgnoreCase)
        && (media.SubType.Equals("json", StringComparison.OrdinalIgnoreCase) || (media.SubTypeWithoutSuffix.Length > 0 && media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase)));
}
