using System.Globalization;
using Atp.Core.Keys;
using Atp.Server.OpenApi;
using Atp.Server.Problems;

namespace Atp.Server.Integrity;

/// <summary>
/// Rotation of the cell's checkpoint signing keys, for platform admins: start a rotation (a new key signs alongside the
/// old one), retire the old key. <c>GET /v1/log/keys</c> shows where each key is.
/// </summary>
internal static class SigningKeyEndpoints
{
    private static readonly TimeSpan MaxOverlap = TimeSpan.FromDays(365);

    public static IEndpointRouteBuilder MapSigningKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/v1/log/keys").WithTags("Log").RequireAuthorization(Scopes.PlatformAdmin);

        keys.MapPost("/rotations", RotateAsync)
            .WithSummary("Start a signing key rotation: a new key (next) signs every checkpoint alongside the old one (retiring) until that retires, by itself after overlapSeconds (default Atp:Keys:RotationOverlap) or by POST …/retire")
            .WithName("rotateSigningKey")
            .WithJsonBody<RotateSigningKeyRequest>(optional: true)
            .Produces<KeysResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict);

        keys.MapPost("/{keyId}/retire", RetireAsync)
            .WithSummary("Retire the retiring key of a rotation now: it signs nothing more (stays published so old checkpoints verify); the next key becomes active")
            .WithName("retireSigningKey")
            .Produces<KeysResponse>()
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> RotateAsync(HttpContext context, SigningKeyRotation rotation, ISigningKeyProvider provider, CancellationToken cancellationToken)
    {
        var request = new RotateSigningKeyRequest(null);
        if (context.Request.ContentLength is > 0 || context.Request.ContentType is not null)
        {
            var (body, problem) = await JsonBody.ReadAsync<RotateSigningKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            request = body!;
        }

        // Checked as a number first: TimeSpan.FromSeconds overflows (a 500) long before long.MaxValue.
        if (request.OverlapSeconds is < 1 || request.OverlapSeconds > (long)MaxOverlap.TotalSeconds)
        {
            return Problem.Validation($"overlapSeconds: 1 to {(long)MaxOverlap.TotalSeconds}, or leave it out for Atp:Keys:RotationOverlap");
        }

        try
        {
            await rotation.RotateAsync(context, request.OverlapSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : null, cancellationToken).ConfigureAwait(false);
        }
        catch (SigningKeyStateException e)
        {
            return Problem.Conflict(e.Slug, e.Message);
        }

        return TypedResults.Created("/v1/log/keys", LogEndpoints.CellKeys(provider));
    }

    private static async Task<IResult> RetireAsync(HttpContext context, string keyId, SigningKeyRotation rotation, ISigningKeyProvider provider, CancellationToken cancellationToken)
    {
        if (keyId.Length != 8 || !keyId.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f')
            || !uint.TryParse(keyId, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var id))
        {
            return Problem.Validation("keyId: 8 lowercase hex digits, as on the verifier key.");
        }

        try
        {
            await rotation.RetireAsync(context, id, cancellationToken).ConfigureAwait(false);
        }
        catch (SigningKeyStateException e) when (e.Slug == "not-found")
        {
            return Problem.NotFound(e.Message);
        }
        catch (SigningKeyStateException e)
        {
            return Problem.Conflict(e.Slug, e.Message);
        }

        return TypedResults.Ok(LogEndpoints.CellKeys(provider));
    }
}

/// <summary>Body of <c>POST /v1/log/keys/rotations</c>; every field optional.</summary>
internal sealed record RotateSigningKeyRequest(long? OverlapSeconds);
