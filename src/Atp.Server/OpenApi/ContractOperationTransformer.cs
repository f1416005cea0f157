using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Atp.Server.OpenApi;

/// <summary>
/// What every operation shares: its path parameters (handlers take the tenant from the access filter, not as a
/// parameter, so the framework does not declare it), hand-read parameters, the credentials it accepts, and the problem
/// responses its gateway and body reader can give.
/// </summary>
internal sealed class ContractOperationTransformer(IOptions<AtpOptions> options) : IOpenApiOperationTransformer
{
    public const string ProblemSchema = "ProblemDetails";
    private const string ProblemMediaType = "application/problem+json";

    private static readonly Dictionary<string, PathParameter> PathParameters = new(StringComparer.Ordinal)
    {
        ["tenant"] = new("The tenant's id: 2-63 lowercase letters, digits or '-'.", JsonSchemaType.String, null, "^[a-z0-9][a-z0-9-]{1,62}$", "acme"),
        ["kekId"] = new("A key-encryption key's id: 8 hex digits (00000000 is the cell's first KEK).", JsonSchemaType.String, null, "^[0-9a-f]{8}$", "5c0ffee1"),
        ["keyId"] = new("The API key's id (the `id` of the create response, not the key).", JsonSchemaType.String, null, "^key_[0-9a-f]{16}$", "key_176bd1d3646bb4d8"),
        ["id"] = new("The event's id.", JsonSchemaType.String, "uuid", null, "01a24d5a-0c41-72f5-8947-c92611223a06"),
        ["index"] = new("The entry's 0-based position in the tenant's log.", JsonSchemaType.Integer, "int64", null, "1"),
        ["type"] = new("The event type (the events' `type`), 1-128 characters; a '/' in it is sent as %2F.", JsonSchemaType.String, null, "^[A-Za-z0-9][A-Za-z0-9._:/-]*$", "payment.captured"),
        ["subject"] = new("A data subject's id, as events name it in actor.id or a target's id: 1-256 characters; a '/' in it is sent as %2F.", JsonSchemaType.String, null, null, "u-17"),
        ["version"] = new("A version of the type's schema, numbered from 1.", JsonSchemaType.Integer, "int32", null, "2"),
        ["level"] = new("The tlog-tiles level: 0 (leaf hashes) to 63, decimal without leading zeros.", JsonSchemaType.String, null, "^(0|[1-9][0-9]?)$", "0"),
        ["tile"] = new("The tile index in tlog-tiles encoding (3-digit elements, all but the last prefixed with 'x': 1234067 is x001/x234/067), "
            + "with '.p/<width>' for the partial tile on the right edge of the signed tree.", JsonSchemaType.String, null, null, "000.p/2"),
    };

    private static readonly Dictionary<int, string> ProblemDescriptions = new()
    {
        [400] = "The request is not valid (`validation`, `malformed-json`, `invalid-schema`, `schema-violation`); `errors` says what to fix. Nothing was stored.",
        [401] = "No usable credential (`unauthenticated`): a missing, unknown, revoked or expired key, an invalid or replayed signature, "
            + "or a bare key for a tenant that requires signed requests (`signature-required`).",
        [403] = "The credential may not do this (`forbidden`: a missing scope, another tenant), or the tenant is suspended (`tenant-suspended`).",
        [404] = "Not found (`not-found`).",
        [409] = "Conflict with what is stored (`tenant-exists`, `key-not-active`, `event-id-conflict`, `last-platform-key`, `schema-incompatible`, `schema-limit`, `schema-conflict`; on reads, `entry-too-large`: an entry bundle holding a leaf stored before the 65,535-byte limit). Nothing was changed.",
        [413] = "The request is too large (`too-large`): the body, or the number of events in a batch.",
        [415] = "The body is not JSON (`unsupported-media-type`); send `Content-Type: application/json`.",
        [421] = "Misdirected (`residency`): the tenant's residency policy does not allow this cell's region; use a cell of its home region.",
        [422] = "The Idempotency-Key was first used with a different body (`idempotency-key-reused`). Nothing was stored.",
        [429] = "Too many requests (`rate-limited`): the tenant's or this address's limit is used up; `Retry-After` says when to retry.",
        [503] = "The store could not make the request durable (`unavailable`; retry with the same Idempotency-Key), its disk is full "
            + "(`storage-full`, with Retry-After), or the tenant's log is quarantined after a failed fork check (`integrity-failure`).",
    };

    public async Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        ArgumentNullException.ThrowIfNull(context);
        var document = context.Document ?? throw new InvalidOperationException("The operation transformer needs its document.");
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        var route = context.Description.RelativePath ?? "";
        operation.Parameters ??= [];
        operation.Responses ??= [];

        var routeParameters = DeclarePathParameters(operation, route);
        var parameters = metadata.OfType<ParameterMetadata>().ToList();
        DeclareParameters(operation, parameters);
        await DeclareBodyAsync(operation, context, metadata, cancellationToken).ConfigureAwait(false);

        // Every endpoint can meet the per-address limit; the rest follows from what the endpoint does.
        var problems = new SortedSet<int> { 429 };
        var authorized = metadata.OfType<IAuthorizeData>().ToList();
        if (authorized.Count > 0 && !metadata.OfType<IAllowAnonymous>().Any())
        {
            DeclareSecurity(operation, document, [.. authorized.Select(a => a.Policy).OfType<string>().Distinct(StringComparer.Ordinal)]);
            problems.UnionWith([401, 403]);
        }

        if (routeParameters.Contains("tenant"))
        {
            // The tenant access filter: unknown tenant, another tenant's credential, suspension, residency, tenant limits.
            problems.UnionWith([403, 404, 421]);
        }

        // Ids and indexes in the path are parsed by the handler (400 when malformed), as are query strings.
        if (routeParameters.Overlaps(["id", "index"]) || parameters.Any(p => p.Location == ParameterLocation.Query) || context.Description.ParameterDescriptions.Any(p => p.Source.Id == "Query"))
        {
            problems.Add(400);
        }

        if (metadata.OfType<JsonBodyMetadata>().Any())
        {
            problems.UnionWith([400, 413, 415]);
        }

        // Every write meets the store: a full disk (storage-full) or a failed commit refuses it.
        if (!HttpMethods.IsGet(context.Description.HttpMethod ?? HttpMethods.Get))
        {
            problems.Add(503);
        }

        foreach (var status in operation.Responses.Keys.Select(k => int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0).Where(s => s >= 400))
        {
            problems.Add(status);
        }

        await EnsureProblemSchemaAsync(context, document, cancellationToken).ConfigureAwait(false);
        foreach (var status in problems)
        {
            operation.Responses[status.ToString(CultureInfo.InvariantCulture)] = ProblemResponse(status, document);
        }
    }

    private static HashSet<string> DeclarePathParameters(OpenApiOperation operation, string route)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var segment in route.Split('/'))
        {
            if (segment.Length < 3 || segment[0] != '{' || segment[^1] != '}')
            {
                continue;
            }

            var name = segment[1..^1].TrimStart('*').Split(':', '=', '?')[0];
            names.Add(name);
            var known = PathParameters.GetValueOrDefault(name) ?? new PathParameter($"The {name}.", JsonSchemaType.String, null, null, null);
            var parameter = new OpenApiParameter
            {
                Name = name,
                In = ParameterLocation.Path,
                Required = true,
                Description = known.Description,
                Schema = new OpenApiSchema { Type = known.Type, Format = known.Format, Pattern = known.Pattern, Minimum = known.Type == JsonSchemaType.Integer ? "0" : null },
                Example = known.Example is null ? null : known.Type == JsonSchemaType.Integer ? JsonValue.Create(long.Parse(known.Example, CultureInfo.InvariantCulture)) : JsonValue.Create(known.Example),
            };
            Replace(operation.Parameters!, name, ParameterLocation.Path, parameter);
        }

        return names;
    }

    private static void DeclareParameters(OpenApiOperation operation, List<ParameterMetadata> parameters)
    {
        foreach (var p in parameters)
        {
            var schema = new OpenApiSchema
            {
                Type = p.Type,
                Format = p.Format,
                Minimum = p.Minimum?.ToString(CultureInfo.InvariantCulture),
                Maximum = p.Maximum?.ToString(CultureInfo.InvariantCulture),
            };
            if (p.Values is { } values)
            {
                schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
            }

            JsonNode? example = p.Example is null ? null : p.Type switch
            {
                JsonSchemaType.Integer => JsonValue.Create(long.Parse(p.Example, CultureInfo.InvariantCulture)),
                JsonSchemaType.Boolean => JsonValue.Create(bool.Parse(p.Example)),
                _ => JsonValue.Create(p.Example),
            };
            Replace(operation.Parameters!, p.Name, p.Location, new OpenApiParameter
            {
                Name = p.Name,
                In = p.Location,
                Required = p.Required,
                Description = p.Description,
                Schema = schema,
                Example = example,
            });
        }
    }

    private static void Replace(IList<IOpenApiParameter> parameters, string name, ParameterLocation location, OpenApiParameter parameter)
    {
        var existing = parameters.FirstOrDefault(p => p.Name == name && p.In == location);
        if (existing is null)
        {
            parameters.Add(parameter);
        }
        else
        {
            parameters[parameters.IndexOf(existing)] = parameter;
        }
    }

    private static async Task DeclareBodyAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, IList<object> metadata, CancellationToken cancellationToken)
    {
        if (metadata.OfType<JsonBodyMetadata>().FirstOrDefault() is not { } body)
        {
            return;
        }

        var shapes = new List<IOpenApiSchema>();
        foreach (var type in body.Types)
        {
            var schema = await context.GetOrCreateSchemaAsync(type, null, cancellationToken).ConfigureAwait(false);
            shapes.Add(Register(context.Document!, type.Name, schema));
        }

        operation.RequestBody = new OpenApiRequestBody
        {
            Required = !body.Optional,
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                ["application/json"] = new OpenApiMediaType { Schema = shapes.Count == 1 ? shapes[0] : new OpenApiSchema { OneOf = shapes } },
            },
        };
    }

    private static OpenApiSchemaReference Register(OpenApiDocument document, string id, IOpenApiSchema schema)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        if (!document.Components.Schemas.ContainsKey(id))
        {
            document.AddComponent(id, schema);
        }

        return new OpenApiSchemaReference(id, document);
    }

    private void DeclareSecurity(OpenApiOperation operation, OpenApiDocument document, List<string> scopes)
    {
        // Alternatives: any one of these credentials, carrying the scopes named by the endpoint's policy.
        List<string> schemes = [ContractDocumentTransformer.ApiKeyScheme, ContractDocumentTransformer.SignatureScheme];
        if (options.Value.Auth.Oidc.Authority is not null)
        {
            schemes.Add(ContractDocumentTransformer.OidcScheme);
        }

        operation.Security = [.. schemes.Select(s => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(s, document)] = [.. scopes] })];
    }

    private static async Task EnsureProblemSchemaAsync(OpenApiOperationTransformerContext context, OpenApiDocument document, CancellationToken cancellationToken)
    {
        if (document.Components?.Schemas?.ContainsKey(ProblemSchema) == true)
        {
            return;
        }

        var schema = await context.GetOrCreateSchemaAsync(typeof(ProblemDetails), null, cancellationToken).ConfigureAwait(false);
        Register(document, ProblemSchema, schema);
    }

    private static OpenApiResponse ProblemResponse(int status, OpenApiDocument document)
    {
        var response = new OpenApiResponse
        {
            Description = ProblemDescriptions.GetValueOrDefault(status, "A problem (RFC 9457)."),
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                [ProblemMediaType] = new OpenApiMediaType { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
            },
        };
        if (status == 429)
        {
            response.Headers = new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal)
            {
                ["Retry-After"] = new OpenApiHeader { Description = "Seconds until a retry can succeed.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } },
            };
        }

        return response;
    }

    private sealed record PathParameter(string Description, JsonSchemaType Type, string? Format, string? Pattern, string? Example);
}
