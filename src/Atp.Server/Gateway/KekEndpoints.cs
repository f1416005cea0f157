using Atp.Core.Keys;
using Atp.Server.Audit;
using Atp.Server.OpenApi;
using Atp.Server.Problems;

namespace Atp.Server.Gateway;

/// <summary>Platform-admin endpoints for the key-encryption keys that seal signing secrets (docs/operations.md, "KEK rotation").</summary>
internal static class KekEndpoints
{
    public static IEndpointRouteBuilder MapKekEndpoints(this IEndpointRouteBuilder app)
    {
        var kek = app.MapGroup("/v1/admin/kek").WithTags("Platform administration").RequireAuthorization(Scopes.PlatformAdmin);

        kek.MapGet("/", (KekRotation rotation, CancellationToken cancellationToken) => StatusAsync(rotation, cancellationToken))
            .WithSummary("The key-encryption keys sealing signing secrets: which is current and how many stored secrets each seals")
            .WithName("getKekStatus")
            .Produces<KekStatusResponse>();

        kek.MapPost("/rotate", RotateAsync)
            .WithSummary("Add a new key-encryption key, make it current and re-seal every stored signing secret under it; signed requests keep working")
            .WithName("rotateKek")
            .Produces<KekRewrapResponse>();

        kek.MapPost("/rewrap", RewrapAsync)
            .WithSummary("Re-seal under the current key-encryption key every stored signing secret still sealed under another")
            .WithName("rewrapKek")
            .Produces<KekRewrapResponse>();

        kek.MapDelete("/{kekId}", RetireAsync)
            .WithSummary("Retire a key-encryption key that is not current and seals no stored secret; its file is deleted")
            .WithName("retireKek")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> StatusAsync(KekRotation rotation, CancellationToken cancellationToken) =>
        TypedResults.Ok(await rotation.StatusAsync(cancellationToken).ConfigureAwait(false));

    private static async Task<IResult> RotateAsync(HttpContext context, KekRotation rotation, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var result = await rotation.RotateAsync(cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "kek.rotated", PlatformAuditLog.TenantId, new() { ["kekId"] = result.CurrentKekId, ["rewrapped"] = Count(result.Rewrapped) }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(result);
    }

    private static async Task<IResult> RewrapAsync(HttpContext context, KekRotation rotation, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var result = await rotation.RewrapAsync(cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "kek.rewrapped", PlatformAuditLog.TenantId, new() { ["kekId"] = result.CurrentKekId, ["rewrapped"] = Count(result.Rewrapped) }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(result);
    }

    private static async Task<IResult> RetireAsync(HttpContext context, string kekId, KekRotation rotation, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        if (!FileSecretSealer.TryParseId(kekId, out var id))
        {
            return Problem.NotFound($"There is no key-encryption key {kekId}; ids are 8 hex digits.");
        }

        if (await rotation.RetireAsync(id, cancellationToken).ConfigureAwait(false) is { } refused)
        {
            return refused.Problem == "not-found" ? Problem.NotFound(refused.Detail) : Problem.Conflict(refused.Problem, refused.Detail);
        }

        await audit.RecordAsync(PlatformEvents.AdminAction(context, "kek.retired", PlatformAuditLog.TenantId, new() { ["kekId"] = FileSecretSealer.FormatId(id) }), cancellationToken).ConfigureAwait(false);
        return TypedResults.NoContent();
    }

    private static string Count(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
