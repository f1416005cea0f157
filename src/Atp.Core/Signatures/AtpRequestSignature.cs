using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Atp.Core.Signatures;

/// <summary>The header values a signed ATP request carries; <see cref="ContentDigest"/> is null for a request without a body.</summary>
public sealed record AtpSignedHeaders(string SignatureInput, string Signature, string? ContentDigest);

/// <summary>
/// ATP's profile of RFC 9421 HTTP Message Signatures: one signature labelled <c>atp</c>, HMAC-SHA256 under the API
/// key's 32-byte signing secret, covering <c>@method</c>, <c>@target-uri</c> and, when there is a body,
/// <c>content-digest</c> (RFC 9530), with <c>created</c>, <c>nonce</c>, <c>keyid</c> and <c>alg</c> parameters.
/// The clock window and nonce replay are the server's checks; everything about the headers themselves is here.
/// </summary>
public static class AtpRequestSignature
{
    public const string Label = "atp";
    public const string Algorithm = "hmac-sha256";
    public const string SignatureInputHeader = "Signature-Input";
    public const string SignatureHeader = "Signature";

    /// <summary>Bytes of a signing secret (HMAC-SHA256 key); users see it as standard base64.</summary>
    public const int SecretLength = 32;

    /// <summary>Longest nonce or key id accepted.</summary>
    public const int MaxParameterLength = 128;

    internal const string ContentDigestComponent = "content-digest";
    private static readonly string[] BodilessComponents = ["@method", "@target-uri"];
    private static readonly string[] BodyComponents = ["@method", "@target-uri", ContentDigestComponent];

    /// <summary>A new random signing secret.</summary>
    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(SecretLength);

    /// <summary>Decodes a secret as users hold it (standard base64 of 32 bytes); false for anything else.</summary>
    public static bool TryDecodeSecret(string? base64, [NotNullWhen(true)] out byte[]? secret)
    {
        secret = null;
        var buffer = new byte[SecretLength + 2];
        if (base64 is null || !Convert.TryFromBase64String(base64.Trim(), buffer, out var written) || written != SecretLength)
        {
            return false;
        }

        secret = buffer[..SecretLength];
        CryptographicOperations.ZeroMemory(buffer);
        return true;
    }

    /// <summary>A fresh nonce: 16 random bytes, base64url (22 characters).</summary>
    public static string NewNonce() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    /// <summary>
    /// Signs a request (client side). <paramref name="body"/> empty means the request has no body, and then no
    /// Content-Digest is sent or covered.
    /// </summary>
    /// <param name="secret">The key's 32-byte signing secret.</param>
    /// <param name="keyId">The API key id, e.g. <c>key_0123456789abcdef</c>.</param>
    /// <param name="method">The method exactly as sent, e.g. <c>POST</c>.</param>
    /// <param name="targetUri">The absolute URI exactly as the request is sent (no fragment), e.g. <c>http://127.0.0.1:8080/v1/tenants/acme/events?x=1</c>.</param>
    /// <param name="body">The body bytes exactly as sent; empty for none.</param>
    /// <param name="created">Unix time in seconds.</param>
    /// <param name="nonce">A fresh random value (<see cref="NewNonce"/>).</param>
    /// <exception cref="ArgumentException">A secret that is not 32 bytes, or a key id, nonce, method or URI that cannot be signed.</exception>
    public static AtpSignedHeaders Sign(ReadOnlySpan<byte> secret, string keyId, string method, string targetUri, ReadOnlySpan<byte> body, long created, string nonce)
    {
        RequireSecret(secret);
        if (!IsParameterText(keyId))
        {
            throw new ArgumentException($"a key id is 1 to {MaxParameterLength} visible ASCII characters", nameof(keyId));
        }

        if (!IsParameterText(nonce))
        {
            throw new ArgumentException($"a nonce is 1 to {MaxParameterLength} visible ASCII characters", nameof(nonce));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(created);

        var digest = body.IsEmpty ? null : ContentDigest.Create(body);
        var components = digest is null ? BodilessComponents : BodyComponents;
        var parameters = new StringBuilder(160).Append('(');
        for (var i = 0; i < components.Length; i++)
        {
            parameters.Append(i == 0 ? "\"" : " \"").Append(components[i]).Append('"');
        }

        parameters.Append(");created=").Append(created.ToString(CultureInfo.InvariantCulture));
        AppendStringParameter(parameters, "nonce", nonce);
        AppendStringParameter(parameters, "keyid", keyId);
        AppendStringParameter(parameters, "alg", Algorithm);
        var signatureParams = parameters.ToString();

        var message = new SignatureComponents(method, targetUri, name => name == ContentDigestComponent ? digest : null);
        if (!SignatureBase.TryCreate(components, signatureParams, message, out var signatureBase, out var failure))
        {
            throw new ArgumentException($"the request cannot be signed: {failure}", nameof(targetUri));
        }

        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        SignatureBase.Mac(secret, signatureBase, mac);
        return new AtpSignedHeaders($"{Label}={signatureParams}", $"{Label}=:{Convert.ToBase64String(mac)}:", digest);
    }

    /// <summary>
    /// Reads the <c>atp</c> signature from the Signature-Input and Signature header values (several field lines
    /// joined with ", ") and checks it follows the ATP profile. Other labels are ignored. This checks no
    /// cryptography: look the key up by <see cref="AtpSignature.KeyId"/>, check the time window and nonce, then
    /// call <see cref="AtpSignature.Verify"/>.
    /// </summary>
    /// <param name="signatureInput">The Signature-Input field value.</param>
    /// <param name="signature">The Signature field value.</param>
    /// <param name="hasBody">Whether the request has a body (then content-digest must be covered).</param>
    /// <param name="parsed">The signature, when it follows the profile.</param>
    /// <param name="failure">Why it does not, for the 401 response.</param>
    public static bool TryParse(string? signatureInput, string? signature, bool hasBody, [NotNullWhen(true)] out AtpSignature? parsed, [NotNullWhen(false)] out string? failure)
    {
        parsed = null;
        if (string.IsNullOrEmpty(signatureInput) || string.IsNullOrEmpty(signature))
        {
            failure = $"the request needs both {SignatureInputHeader} and {SignatureHeader} headers";
            return false;
        }

        if (!StructuredFieldParser.TryParseDictionary(signatureInput, out var inputs, out failure))
        {
            failure = $"{SignatureInputHeader} is malformed: {failure}";
            return false;
        }

        if (!StructuredFieldParser.TryParseDictionary(signature, out var signatures, out failure))
        {
            failure = $"{SignatureHeader} is malformed: {failure}";
            return false;
        }

        if (StructuredFieldParser.Find(inputs, Label) is not { InnerList: { } items } input)
        {
            failure = $"{SignatureInputHeader} has no inner list labelled '{Label}'";
            return false;
        }

        if (StructuredFieldParser.Find(signatures, Label)?.Item is not { Kind: SfKind.ByteSequence, Bytes: { } signatureBytes })
        {
            failure = $"{SignatureHeader} has no byte sequence labelled '{Label}'";
            return false;
        }

        if (signatureBytes.Length != HMACSHA256.HashSizeInBytes)
        {
            failure = $"an {Algorithm} signature is {HMACSHA256.HashSizeInBytes} bytes, not {signatureBytes.Length}";
            return false;
        }

        if (!TryReadComponents(items, out var components, out failure))
        {
            return false;
        }

        var coversDigest = components.Contains(ContentDigestComponent);
        failure = !components.Contains("@method") || !components.Contains("@target-uri") ? "the signature must cover \"@method\" and \"@target-uri\""
            : hasBody && !coversDigest ? "a request with a body must be signed over \"content-digest\""
            : null;
        if (failure is not null)
        {
            return false;
        }

        if (input.Parameter("created") is not { Kind: SfKind.Integer, Integer: >= 0 and var created })
        {
            failure = "the 'created' parameter must be a non-negative integer";
            return false;
        }

        if (TextParameter(input, "nonce") is not { } nonce || TextParameter(input, "keyid") is not { } keyId)
        {
            failure = $"the 'nonce' and 'keyid' parameters must be strings of 1 to {MaxParameterLength} visible ASCII characters";
            return false;
        }

        if (input.Parameter("alg") is not { Kind: SfKind.String, Text: Algorithm })
        {
            failure = $"the 'alg' parameter must be \"{Algorithm}\"";
            return false;
        }

        parsed = new AtpSignature(keyId, created, nonce, components, coversDigest, signatureBytes, input.RawValue);
        return true;
    }

    internal static void RequireSecret(ReadOnlySpan<byte> secret)
    {
        if (secret.Length != SecretLength)
        {
            throw new ArgumentException($"a signing secret is {SecretLength} bytes", nameof(secret));
        }
    }

    private static bool TryReadComponents(IReadOnlyList<SfInnerItem> items, [NotNullWhen(true)] out List<string>? components, [NotNullWhen(false)] out string? failure)
    {
        components = new List<string>(items.Count);
        foreach (var item in items)
        {
            if (item.Value is not { Kind: SfKind.String, Text: { } name })
            {
                failure = "covered components must be strings";
                return false;
            }

            if (item.Parameters.Count > 0)
            {
                failure = $"component parameters (on \"{name}\") are not supported";
                return false;
            }

            if (components.Contains(name))
            {
                failure = $"\"{name}\" is covered twice";
                return false;
            }

            components.Add(name);
        }

        failure = null;
        return true;
    }

    private static string? TextParameter(SfMember input, string key) =>
        input.Parameter(key) is { Kind: SfKind.String, Text: { } text } && IsParameterText(text) ? text : null;

    /// <summary>Nonce and key id: 1 to <see cref="MaxParameterLength"/> visible ASCII characters.</summary>
    private static bool IsParameterText(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > MaxParameterLength)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is <= ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>RFC 8941 §4.1.6: a string parameter, with '"' and '\' escaped.</summary>
    private static void AppendStringParameter(StringBuilder builder, string key, string value)
    {
        builder.Append(';').Append(key).Append("=\"");
        foreach (var c in value)
        {
            if (c is '"' or '\\')
            {
                builder.Append('\\');
            }

            builder.Append(c);
        }

        builder.Append('"');
    }
}
