using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using Atp.Core.Keys;
using Atp.Core.Signatures;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// API keys, bare (<c>Authorization: Bearer atp_…</c>) or as RFC 9421 signed requests (<c>Signature-Input</c> /
/// <c>Signature</c>, label <c>atp</c>, HMAC-SHA256 under the key's signing secret). A bearer key's checksum is
/// checked before any lookup (typos and random guesses cost nothing); the store is searched by SHA-256 of the key,
/// never by the key itself. A signature is checked before its nonce is recorded, so nobody can burn another
/// client's nonces.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ITenantStore tenants,
    ISecretSealer sealer,
    NonceCache nonces,
    PlatformAuditLog audit,
    IOptions<AtpOptions> atp,
    TimeProvider clock)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string SignatureInputHeader = AtpRequestSignature.SignatureInputHeader;
    private const string BearerPrefix = "Bearer ";
    private const string FailureItem = "atp.auth.failure";

    /// <summary>Where a verified signed request's body is handed to the endpoint (it was read once, to check its digest).</summary>
    public const string VerifiedBodyItem = "atp.body";

    private readonly byte[]? _bootstrapHash = atp.Value.Bootstrap.AdminKey is { Length: > 0 } key ? ApiKeyFormat.Hash(key) : null;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Request.Headers.ContainsKey(SignatureInputHeader) || Request.Headers.ContainsKey(AtpRequestSignature.SignatureHeader))
        {
            return await AuthenticateSignedAsync().ConfigureAwait(false);
        }

        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }

        var (result, stored) = await AuthenticateBearerAsync(header).ConfigureAwait(false);
        if (stored is not null)
        {
            await NoteRegionAsync(stored).ConfigureAwait(false);
        }

        return result;
    }

    private async Task<(AuthenticateResult Result, ApiKey? Key)> AuthenticateBearerAsync(string header)
    {
        if (!header.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return (Fail(PlatformEvents.AuthFailed, "Use 'Authorization: Bearer <api key>'."), null);
        }

        var presented = header[BearerPrefix.Length..].Trim();
        if (!ApiKeyFormat.IsWellFormed(presented))
        {
            return (Fail(PlatformEvents.AuthFailed, "The API key is malformed."), null);
        }

        var hash = ApiKeyFormat.Hash(presented);
        if (_bootstrapHash is not null && CryptographicOperations.FixedTimeEquals(hash, _bootstrapHash))
        {
            return (Success("bootstrap", tenantId: null, [Scopes.PlatformAdmin], signed: false), null);
        }

        var stored = await tenants.FindApiKeyByHashAsync(hash, Context.RequestAborted).ConfigureAwait(false);

        // The lookup is by hash; comparing again in constant time keeps the decision independent of how the index matched.
        if (stored is null || !CryptographicOperations.FixedTimeEquals(stored.KeyHash, hash))
        {
            return (Fail(PlatformEvents.AuthFailed, "The API key is not known."), null);
        }

        return stored.StatusAt(clock.GetUtcNow()) switch
        {
            ApiKey.Revoked => (Fail(PlatformEvents.AuthFailed, "The API key has been revoked.", stored.Id), null),
            ApiKey.Expired => (Fail(PlatformEvents.AuthFailed, "The API key has expired.", stored.Id), null),
            _ => (Success(stored.Id, stored.TenantId, stored.Scopes, signed: false), stored),
        };
    }

    private async Task<AuthenticateResult> AuthenticateSignedAsync()
    {
        // Several field lines join with ", " (RFC 9110 §5.3); StringValues.ToString() would join with ",".
        var input = string.Join(", ", Request.Headers[SignatureInputHeader].ToArray());
        var signatureField = string.Join(", ", Request.Headers[AtpRequestSignature.SignatureHeader].ToArray());
        // Whether the request has a body is decided below from the body itself: framing headers say nothing reliable
        // (an HTTP/2 request may carry DATA frames with neither content-length nor transfer-encoding).
        if (!AtpRequestSignature.TryParse(input, signatureField, hasBody: false, out var signature, out var failure))
        {
            return Fail(PlatformEvents.SignatureInvalid, $"The request signature is not usable: {failure}.");
        }

        var stored = await tenants.FindApiKeyByIdAsync(signature.KeyId, Context.RequestAborted).ConfigureAwait(false);
        if (stored is null || stored.SealedSigningSecret is null)
        {
            return Fail(PlatformEvents.SignatureInvalid, "The signature's keyid names no signing key.", signature.KeyId);
        }

        var status = stored.StatusAt(clock.GetUtcNow());
        if (status != ApiKey.Active)
        {
            return Fail(PlatformEvents.AuthFailed, $"The API key is {status}.", stored.Id);
        }

        var window = atp.Value.Auth.SignatureWindow;
        var skew = clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(signature.Created, -62135596800L, 253402300799L));
        if (skew.Duration() > window)
        {
            return Fail(PlatformEvents.SignatureInvalid, $"The signature was created {(long)skew.TotalSeconds} s from the server's clock; at most {(long)window.TotalSeconds} s are accepted.", stored.Id);
        }

        // Every signed request's body is read (bounded) and the endpoint gets exactly the bytes checked here; a non-empty
        // body is accepted only under a signature that covers content-digest, on every protocol.
        // A body over the limit is the client's size problem (413, via the exception handlers), not a bad signature.
        var limit = atp.Value.Ingestion.MaxRequestBytes;
        if (Request.ContentLength > limit)
        {
            throw new BadHttpRequestException($"The body is {Request.ContentLength} bytes; at most {limit} are accepted.", StatusCodes.Status413PayloadTooLarge);
        }

        var read = await JsonBody.ReadLimitedAsync(Request, limit, Context.RequestAborted).ConfigureAwait(false);
        if (read is not { } body)
        {
            throw new BadHttpRequestException($"The body is larger than {limit} bytes.", StatusCodes.Status413PayloadTooLarge);
        }

        if (!body.IsEmpty && !signature.CoversContentDigest)
        {
            return Fail(PlatformEvents.SignatureInvalid, "The request signature is not usable: a request with a body must be signed over \"content-digest\".", stored.Id);
        }

        if (signature.CoversContentDigest)
        {
            var digest = ContentDigest.Verify(Request.Headers[ContentDigest.HeaderName], body.Span);
            if (!digest.IsValid)
            {
                return Fail(PlatformEvents.SignatureInvalid, $"Content-Digest: {digest.Failure}.", stored.Id);
            }
        }

        Context.Items[VerifiedBodyItem] = body;

        if (!VerifyMac(signature, stored))
        {
            return Fail(PlatformEvents.SignatureInvalid, "The request signature does not verify.", stored.Id);
        }

        switch (nonces.TryUse(stored.Id, signature.Nonce))
        {
            case NonceCache.Result.Replayed:
                return Fail(PlatformEvents.SignatureReplayed, "The signature's nonce was already used: the request is a replay.", stored.Id);
            case NonceCache.Result.Full:
                return Fail(PlatformEvents.SignatureInvalid, "The server cannot remember more nonces right now; retry shortly.", stored.Id);
        }

        // A bearer key sent alongside must be the signing key itself, not a second identity.
        if (Request.Headers.Authorization.Count > 0)
        {
            var (bearer, bearerKey) = await AuthenticateBearerAsync(Request.Headers.Authorization.ToString()).ConfigureAwait(false);
            if (!bearer.Succeeded || bearerKey?.Id != stored.Id)
            {
                return Fail(PlatformEvents.SignatureInvalid, "The Authorization header names a different key than the signature.", stored.Id);
            }
        }

        await NoteRegionAsync(stored).ConfigureAwait(false);
        return Success(stored.Id, stored.TenantId, stored.Scopes, signed: true);
    }

    private bool VerifyMac(AtpSignature signature, ApiKey stored)
    {
        Span<byte> secret = stackalloc byte[AtpRequestSignature.SecretLength];
        try
        {
            if (!sealer.TryUnseal(stored.SealedSigningSecret, stored.Id, secret))
            {
                return false;
            }

            // The raw request target (path and query exactly as sent) so the server rebuilds the URI the client signed.
            var rawTarget = Context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? (Request.PathBase + Request.Path + Request.QueryString).ToString();
            var targetUri = $"{Request.Scheme}://{Request.Host.Value}{rawTarget}";
            var headers = Request.Headers;
            var components = new SignatureComponents(Request.Method, targetUri, name => headers.TryGetValue(name, out var value) ? string.Join(", ", value.ToArray()) : null);
            return signature.Verify(secret, components).IsValid;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    // The second-region detector: the key remembers the region of the cell that last served it.
    private async Task NoteRegionAsync(ApiKey key)
    {
        var region = atp.Value.Region;
        if (string.Equals(key.LastRegion, region, StringComparison.Ordinal))
        {
            return;
        }

        var previous = await tenants.SetApiKeyRegionAsync(key.Id, region, Context.RequestAborted).ConfigureAwait(false);
        if (previous is not null && !string.Equals(previous, region, StringComparison.Ordinal))
        {
            audit.Report(AlertDetector.SecondRegion(key.Id, key.TenantId, previous, region));
        }
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        var result = await HandleAuthenticateOnceSafeAsync().ConfigureAwait(false);
        var detail = result.Failure?.Message ?? "Send an API key as 'Authorization: Bearer <key>', or sign the request (RFC 9421, label atp).";
        if (Context.Items[FailureItem] is AuthFailure(var action, var keyId))
        {
            var refusal = PlatformEvents.Refusal(Context, action, null, detail);
            audit.Report(keyId is null ? refusal : refusal with { Data = new Dictionary<string, string>(refusal.Data!) { ["keyId"] = keyId } });
        }
        else
        {
            audit.Report(PlatformEvents.Refusal(Context, PlatformEvents.AuthFailed, null, "no credential"));
        }

        await Problem.Unauthenticated(detail).ExecuteAsync(Context).ConfigureAwait(false);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problem.Forbidden("The API key lacks the scope this call needs.").ExecuteAsync(Context);

    private AuthenticateResult Fail(string action, string detail, string? keyId = null)
    {
        Context.Items[FailureItem] = new AuthFailure(action, keyId);
        return AuthenticateResult.Fail(detail);
    }

    private static AuthenticateResult Success(string keyId, string? tenantId, IEnumerable<string> scopes, bool signed)
    {
        var claims = new List<Claim> { new(AtpClaims.KeyId, keyId) };
        if (tenantId is not null)
        {
            claims.Add(new Claim(AtpClaims.Tenant, tenantId));
        }

        if (signed)
        {
            claims.Add(new Claim(AtpClaims.Signed, "true"));
        }

        claims.AddRange(scopes.Select(s => new Claim(AtpClaims.Scope, s)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }
}

/// <summary>Why authentication failed, kept for the challenge that records it.</summary>
internal sealed record AuthFailure(string Action, string? KeyId);
