using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// <c>Authorization: Bearer atp_…</c>. The key's checksum is checked before any lookup (typos and random guesses
/// cost nothing); the store is searched by SHA-256 of the key, never by the key itself.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ITenantStore tenants,
    IOptions<AtpOptions> atp,
    TimeProvider clock)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private const string BearerPrefix = "Bearer ";

    private readonly byte[]? _bootstrapHash = atp.Value.Bootstrap.AdminKey is { Length: > 0 } key ? ApiKeyFormat.Hash(key) : null;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("Use 'Authorization: Bearer <api key>'.");
        }

        var presented = header[BearerPrefix.Length..].Trim();
        if (!ApiKeyFormat.IsWellFormed(presented))
        {
            return AuthenticateResult.Fail("The API key is malformed.");
        }

        var hash = ApiKeyFormat.Hash(presented);
        if (_bootstrapHash is not null && CryptographicOperations.FixedTimeEquals(hash, _bootstrapHash))
        {
            return Success("bootstrap", tenantId: null, [Scopes.PlatformAdmin]);
        }

        var stored = await tenants.FindApiKeyByHashAsync(hash, Context.RequestAborted).ConfigureAwait(false);

        // The lookup is by hash; comparing again in constant time keeps the decision independent of how the index matched.
        if (stored is null || !CryptographicOperations.FixedTimeEquals(stored.KeyHash, hash))
        {
            return AuthenticateResult.Fail("The API key is not known.");
        }

        return stored.StatusAt(clock.GetUtcNow()) switch
        {
            ApiKey.Revoked => AuthenticateResult.Fail("The API key has been revoked."),
            ApiKey.Expired => AuthenticateResult.Fail("The API key has expired."),
            _ => Success(stored.Id, stored.TenantId, stored.Scopes),
        };
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        var result = await HandleAuthenticateOnceSafeAsync().ConfigureAwait(false);
        var detail = result.Failure?.Message ?? "Send an API key as 'Authorization: Bearer <key>'.";
        await Problem.Unauthenticated(detail).ExecuteAsync(Context).ConfigureAwait(false);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problem.Forbidden("The API key lacks the scope this call needs.").ExecuteAsync(Context);

    private static AuthenticateResult Success(string keyId, string? tenantId, IEnumerable<string> scopes)
    {
        var claims = new List<Claim> { new(AtpClaims.KeyId, keyId) };
        if (tenantId is not null)
        {
            claims.Add(new Claim(AtpClaims.Tenant, tenantId));
        }

        claims.AddRange(scopes.Select(s => new Claim(AtpClaims.Scope, s)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }
}
