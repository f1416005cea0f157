using System.Globalization;
using System.Text.Json;
using Atp.Core.Holds;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Holds;

/// <summary>
/// Legal holds (docs/api.md, "Legal holds"): a tenant admin places a hold on part of the tenant's log and releases it
/// later; while it is active, what it covers is not erased. A hold is its own resource, not a member of the policy
/// document: placing one is urgent and needs no second approver. Every step is in the platform audit log.
/// </summary>
internal static class HoldEndpoints
{
    private const int MaxBodyBytes = 64 * 1024;

    public static IEndpointRouteBuilder MapHoldEndpoints(this IEndpointRouteBuilder app)
    {
        var holds = app.MapGroup("/v1/tenants/{tenant}/holds").WithTags("Legal holds").RequireAuthorization(Scopes.TenantAdmin).RequireTenantAccess();

        holds.MapPost("/", PlaceAsync)
            .WithSummary("Place a legal hold on part of the tenant's log (tenant admin, platform admin)")
            .WithDescription("scope narrows what is held: eventTypes (at most 100, each at most 200 characters, exactly as ingested), actorId and targetId (at most 256 characters), from (inclusive) and until (exclusive) on the events' occurredAt; every member given must match, an absent one does not narrow, and {} holds the whole log. reason: 1-1,024 characters. The issuer is the caller's person (the key's owner, or oidc:issuer#subject). While the hold is active, an erasure of a subject it may cover answers 409 legal-hold. 400 validation: an unknown member, a value out of range, from not before until; nothing is stored. 409 hold-limit: the tenant has as many active holds as Atp:Holds:MaxActiveHoldsPerTenant allows.")
            .WithName("placeLegalHold")
            .WithJsonBody<PlaceHoldRequest>()
            .Produces<LegalHoldDto>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict);

        holds.MapGet("/", ListAsync)
            .WithSummary("The tenant's legal holds, newest first: the active ones, or with includeReleased=true every hold (tenant admin, platform admin)")
            .WithDescription("Released holds stay listed with releasedAt and releasedBy; a hold is never deleted.")
            .WithName("listLegalHolds")
            .WithParameter("includeReleased", "Also list released holds.", Microsoft.OpenApi.JsonSchemaType.Boolean, example: "true")
            .Produces<LegalHoldListResponse>();

        holds.MapGet("/{id}", GetAsync)
            .WithSummary("One legal hold of the tenant, active or released (tenant admin, platform admin)")
            .WithDescription("404 not-found: the tenant has no hold of this id (another tenant's hold is not found either).")
            .WithName("getLegalHold")
            .Produces<LegalHoldDto>()
            .ProducesProblems(StatusCodes.Status404NotFound);

        holds.MapPost("/{id}/release", ReleaseAsync)
            .WithSummary("Release an active legal hold (tenant admin, platform admin); what it covered may be erased again")
            .WithDescription("reason: 1-1,024 characters, recorded in the platform audit log (hold.released) with the releasing person. 404 not-found: no hold of this id. 409 hold-not-active: the hold was already released.")
            .WithName("releaseLegalHold")
            .WithJsonBody<ReleaseHoldRequest>()
            .Produces<LegalHoldDto>()
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> PlaceAsync(
        HttpContext context, ILegalHoldStore holds, ITenantStore tenants, PlatformAuditLog audit, IOptions<HoldOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadBytesAsync(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        HoldScope? scope;
        string? reason;
        List<string> errors;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = JsonBody.Options.MaxDepth });
            (scope, reason, errors) = PlaceHoldReader.Read(document.RootElement);
        }
        catch (JsonException e)
        {
            return Problem.MalformedJson(e.Message);
        }

        if (errors.Count > 0)
        {
            return Problem.Validation("The hold is not valid; nothing was stored.", errors);
        }

        var tenant = TenantAccessFilter.Current(context);
        var limit = options.Value.MaxActiveHoldsPerTenant;

        // Not atomic with the insert: two placements racing at the limit may both pass; the limit bounds work, it is no quota.
        var active = await holds.ListHoldsAsync(tenant.Id, includeReleased: false, cancellationToken).ConfigureAwait(false);
        if (active.Count >= limit)
        {
            return Problem.Create(409, "hold-limit", "The tenant has as many active legal holds as allowed", $"The tenant has {active.Count} active holds, the most Atp:Holds:MaxActiveHoldsPerTenant allows ({limit}). Release a hold that no longer applies, or widen an existing one; nothing was stored.");
        }

        var issuer = await Persons.OfAsync(context.User, tenants, cancellationToken).ConfigureAwait(false) ?? "";
        var hold = new LegalHold(ResourceIds.New("hold_"), tenant.Id, scope!, reason!, issuer, clock.GetUtcNow(), null, null);
        await holds.CreateHoldAsync(hold, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "hold.placed", tenant.Id, new()
            {
                ["holdId"] = hold.Id,
                ["scope"] = HoldScopeJson.ToJson(hold.Scope),
                ["issuer"] = issuer,
                ["reason"] = hold.Reason,
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/holds/{hold.Id}", LegalHoldDto.Of(hold));
    }

    private static async Task<IResult> ListAsync(HttpContext context, bool? includeReleased, ILegalHoldStore holds, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var list = await holds.ListHoldsAsync(tenant.Id, includeReleased ?? false, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new LegalHoldListResponse([.. list.Select(LegalHoldDto.Of)]));
    }

    private static async Task<IResult> GetAsync(HttpContext context, string id, ILegalHoldStore holds, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        return await holds.GetHoldAsync(tenant.Id, id, cancellationToken).ConfigureAwait(false) is { } hold
            ? TypedResults.Ok(LegalHoldDto.Of(hold))
            : NotFound(id);
    }

    private static async Task<IResult> ReleaseAsync(
        HttpContext context, string id, ILegalHoldStore holds, ITenantStore tenants, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<ReleaseHoldRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var errors = new List<string>();
        if (PlaceHoldReader.ReadReason(request!.Reason, errors) is not { } reason)
        {
            return Problem.Validation("The release is not valid; the hold is unchanged.", errors);
        }

        var tenant = TenantAccessFilter.Current(context);
        var releaser = await Persons.OfAsync(context.User, tenants, cancellationToken).ConfigureAwait(false) ?? "";
        var now = clock.GetUtcNow();
        if (!await holds.ReleaseHoldAsync(tenant.Id, id, releaser, now, cancellationToken).ConfigureAwait(false))
        {
            return await holds.GetHoldAsync(tenant.Id, id, cancellationToken).ConfigureAwait(false) is { } released
                ? Problem.Conflict("hold-not-active", $"Hold {released.Id} was released at {released.ReleasedAt?.ToString("O", CultureInfo.InvariantCulture)}; only an active hold can be released.")
                : NotFound(id);
        }

        var hold = await holds.GetHoldAsync(tenant.Id, id, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Hold {id} was released but cannot be read back.");
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "hold.released", tenant.Id, new()
            {
                ["holdId"] = hold.Id,
                ["issuer"] = hold.Issuer,
                ["releasedBy"] = releaser,
                ["reason"] = reason,
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(LegalHoldDto.Of(hold));
    }

    private static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult NotFound(string id) => Problem.NotFound($"The tenant has no legal hold '{id}'.");
}
