using System.Globalization;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Keys;
using Atp.Core.Schemas;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atp.Server.Schemas;

/// <summary>The per-tenant schema registry: versions of a JSON Schema per event type, and each type's compatibility mode.</summary>
internal static class SchemaEndpoints
{
    // The schema itself is capped at EventSchema.MaxSchemaBytes in canonical form; the body may carry whitespace.
    private const int MaxBodyBytes = 2 * EventSchema.MaxSchemaBytes;

    public static IEndpointRouteBuilder MapSchemaEndpoints(this IEndpointRouteBuilder app)
    {
        var schemas = app.MapGroup("/v1/tenants/{tenant}/schemas").WithTags("Schemas").RequireTenantAccess();

        schemas.MapGet("/", ListAsync)
            .RequireAuthorization()
            .WithSummary("The tenant's registered event types with their compatibility mode and latest version (any key of the tenant)")
            .WithName("listSchemas")
            .Produces<SchemaTypeListResponse>();

        schemas.MapGet("/{type}", GetTypeAsync)
            .RequireAuthorization()
            .WithSummary("A registered type: its compatibility mode, its version numbers and its latest schema (any key of the tenant)")
            .WithName("getSchemaType")
            .Produces<SchemaTypeResponse>();

        schemas.MapGet("/{type}/versions/{version}", GetVersionAsync)
            .RequireAuthorization()
            .WithSummary("One immutable version of a type's schema (any key of the tenant)")
            .WithName("getSchemaVersion")
            .Produces<SchemaVersionResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        schemas.MapPut("/{type}", RegisterAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .WithSummary("Register a new version of a type's JSON Schema 2020-12 (tenant admin); an identical schema returns its existing version (200)")
            .WithDescription("The new version is checked against the earlier ones under the type's compatibility mode (or the one the body sets); a breaking version is refused with 409 schema-incompatible and the list of breaking changes (version, direction, pointer, reason). 400 invalid-schema: not a JSON Schema 2020-12 document JsonSchema.Net accepts, over 64 KiB, a reference outside the document, an unknown format. 409 schema-limit: the tenant's type or the type's version limit is reached. 409 schema-conflict: another registration of the type won the race; retry. Nothing of a refused request is stored.")
            .WithName("registerSchema")
            .WithJsonBody<RegisterSchemaRequest>()
            .Produces<SchemaVersionResponse>(StatusCodes.Status201Created)
            .Produces<SchemaVersionResponse>()
            .ProducesProblems(StatusCodes.Status409Conflict);

        schemas.MapPut("/{type}/compatibility", SetCompatibilityAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .WithSummary("Set a registered type's compatibility mode: BACKWARD (default), BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE (tenant admin)")
            .WithName("setSchemaCompatibility")
            .WithJsonBody<SetCompatibilityRequest>()
            .Produces<CompatibilityResponse>();
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext context, SchemaRegistry registry, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var subjects = await registry.Store.ListSchemaSubjectsAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new SchemaTypeListResponse([.. subjects.Select(s => new SchemaTypeSummary(s.Type, s.Compatibility, s.LatestVersion))]));
    }

    private static async Task<IResult> GetTypeAsync(HttpContext context, string type, SchemaRegistry registry, CancellationToken cancellationToken)
    {
        if (TypeProblem(ref type) is { } problem)
        {
            return problem;
        }

        var tenant = TenantAccessFilter.Current(context);
        var subject = await registry.Store.GetSchemaSubjectAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        var versions = subject is null ? [] : await registry.Store.ListSchemaVersionsAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        if (subject is null || versions.Count == 0)
        {
            return Unregistered(type);
        }

        var latest = versions[^1];
        return TypedResults.Ok(new SchemaTypeResponse(type, subject.Compatibility, latest.Version, [.. versions.Select(v => v.Version)], JsonDocument.Parse(latest.Schema).RootElement, latest.CreatedAt));
    }

    private static async Task<IResult> GetVersionAsync(HttpContext context, string type, string version, SchemaRegistry registry, CancellationToken cancellationToken)
    {
        if (TypeProblem(ref type) is { } problem)
        {
            return problem;
        }

        if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1)
        {
            return Problem.Validation("The version must be a positive integer.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var subject = await registry.Store.GetSchemaSubjectAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        var stored = subject is null ? null : (await registry.Store.ListSchemaVersionsAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false)).FirstOrDefault(v => v.Version == number);
        return subject is null ? Unregistered(type)
            : stored is null ? Problem.NotFound($"Type '{type}' has versions 1 to {subject.LatestVersion}, not {number}.")
            : TypedResults.Ok(ToResponse(stored, subject.Compatibility));
    }

    private static async Task<IResult> RegisterAsync(
        HttpContext context, string type, SchemaRegistry registry, PlatformAuditLog audit, IOptions<SchemaRegistryOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<RegisterSchemaRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (TypeProblem(ref type) is { } typeProblem)
        {
            return typeProblem;
        }

        if (request!.Schema.ValueKind == JsonValueKind.Undefined)
        {
            return Problem.Validation("schema: required, a JSON Schema 2020-12 document; nothing was stored.");
        }

        CompatibilityMode? requestedMode = null;
        if (request.Compatibility is not null)
        {
            if (!CompatibilityModes.TryParse(request.Compatibility, out var parsed))
            {
                return Problem.Validation($"compatibility: one of {string.Join(", ", CompatibilityModes.Names)}; nothing was stored.");
            }

            requestedMode = parsed;
        }

        if (EventSchema.Compile(request.Schema, out var schemaErrors) is not { } candidate)
        {
            return Problem.Create(400, "invalid-schema", "The schema is not a valid JSON Schema 2020-12 document", $"The schema for type '{type}' is not acceptable; nothing was stored.", schemaErrors);
        }

        var tenant = TenantAccessFilter.Current(context);
        var store = registry.Store;
        var subject = await store.GetSchemaSubjectAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        var versions = subject is null ? [] : await store.ListSchemaVersionsAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        var mode = requestedMode ?? (subject is not null && CompatibilityModes.TryParse(subject.Compatibility, out var stored) ? stored : CompatibilityModes.Default);

        // Idempotent: the same schema (in canonical form) again is the version it already is.
        if (versions.FirstOrDefault(v => v.Schema == candidate.Canonical) is { } existing)
        {
            if (requestedMode is { } changed && subject!.Compatibility != changed.Name())
            {
                await store.SetSchemaCompatibilityAsync(tenant.Id, type, changed.Name(), cancellationToken).ConfigureAwait(false);
                registry.Forget(tenant.Id, type);
                await audit.RecordAsync(PlatformEvents.AdminAction(context, "schema.compatibility-changed", tenant.Id, new() { ["type"] = type, ["compatibility"] = changed.Name(), ["previous"] = subject.Compatibility }), cancellationToken).ConfigureAwait(false);
            }

            return TypedResults.Ok(ToResponse(existing, mode.Name()));
        }

        var limits = options.Value;
        if (versions.Count >= limits.MaxVersionsPerType)
        {
            return Problem.Conflict("schema-limit", $"Type '{type}' has {versions.Count} versions, the most one type may have ({limits.MaxVersionsPerType}); nothing was stored.");
        }

        if (subject is null && (await store.ListSchemaSubjectsAsync(tenant.Id, cancellationToken).ConfigureAwait(false)).Count >= limits.MaxTypesPerTenant)
        {
            return Problem.Conflict("schema-limit", $"The tenant has registered {limits.MaxTypesPerTenant} types, the most it may; nothing was stored.");
        }

        var conflicts = SchemaCompatibility.Check(mode, [.. versions.Select(v => JsonDocument.Parse(v.Schema).RootElement)], candidate.Document);
        if (conflicts.Count > 0)
        {
            return Problem.Create(
                409,
                "schema-incompatible",
                "The schema breaks the type's compatibility mode",
                $"The new schema for type '{type}' breaks {mode.Name()}: {conflicts.Count} breaking change(s); nothing was stored.",
                conflicts.Select(c => new BreakingChangeDto(c.Version, c.Direction, c.Location, c.Reason)).ToArray());
        }

        var version = new StoredSchema(type, versions.Count + 1, candidate.Canonical, clock.GetUtcNow());
        if (!await store.TryAddSchemaVersionAsync(tenant.Id, version, mode.Name(), cancellationToken).ConfigureAwait(false))
        {
            return Problem.Conflict("schema-conflict", $"Another version of type '{type}' was registered at the same time; nothing was stored. Retry: the check runs again against it.");
        }

        registry.Forget(tenant.Id, type);
        var data = new Dictionary<string, string>
        {
            ["type"] = type,
            ["version"] = version.Version.ToString(CultureInfo.InvariantCulture),
            ["compatibility"] = mode.Name(),
            ["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(candidate.Canonical))),
        };
        await audit.RecordAsync(PlatformEvents.AdminAction(context, "schema.registered", tenant.Id, data), cancellationToken).ConfigureAwait(false);
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/schemas/{Uri.EscapeDataString(type)}/versions/{version.Version}", ToResponse(version, mode.Name()));
    }

    private static async Task<IResult> SetCompatibilityAsync(HttpContext context, string type, SchemaRegistry registry, PlatformAuditLog audit, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<SetCompatibilityRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (TypeProblem(ref type) is { } typeProblem)
        {
            return typeProblem;
        }

        if (!CompatibilityModes.TryParse(request!.Compatibility, out var mode))
        {
            return Problem.Validation($"compatibility: one of {string.Join(", ", CompatibilityModes.Names)}; nothing was changed.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var subject = await registry.Store.GetSchemaSubjectAsync(tenant.Id, type, cancellationToken).ConfigureAwait(false);
        if (subject is null)
        {
            return Unregistered(type);
        }

        if (subject.Compatibility != mode.Name())
        {
            await registry.Store.SetSchemaCompatibilityAsync(tenant.Id, type, mode.Name(), cancellationToken).ConfigureAwait(false);
            registry.Forget(tenant.Id, type);
            await audit.RecordAsync(PlatformEvents.AdminAction(context, "schema.compatibility-changed", tenant.Id, new() { ["type"] = type, ["compatibility"] = mode.Name(), ["previous"] = subject.Compatibility }), cancellationToken).ConfigureAwait(false);
        }

        return TypedResults.Ok(new CompatibilityResponse(type, mode.Name(), subject.LatestVersion));
    }

    // Routing leaves %2F encoded in a segment: a type such as "billing/invoice" is sent as billing%2Finvoice.
    private static ProblemHttpResult? TypeProblem(ref string type)
    {
        type = Uri.UnescapeDataString(type);
        return EventReader.IsValidType(type)
            ? null
            : Problem.Validation("The event type must be 1-128 characters, start with a letter or digit and contain only letters, digits and . _ : / - ('/' sent as %2F).");
    }

    private static ProblemHttpResult Unregistered(string type) => Problem.NotFound($"The tenant has registered no schema for type '{type}'.");

    private static SchemaVersionResponse ToResponse(StoredSchema stored, string compatibility) =>
        new(stored.Type, stored.Version, compatibility, JsonDocument.Parse(stored.Schema).RootElement, stored.CreatedAt);
}
