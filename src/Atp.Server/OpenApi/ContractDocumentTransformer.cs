using Atp.Server.Events;
using Atp.Server.Tenants;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Atp.Server.OpenApi;

/// <summary>
/// The document's description and its security schemes (API keys, OIDC tokens when configured, RFC 9421 signatures), and the
/// finishing touches on its schemas: the members handlers keep as raw JSON, and which members are really required.
/// </summary>
internal sealed class ContractDocumentTransformer(IOptions<AtpOptions> options) : IOpenApiDocumentTransformer
{
    public const string ApiKeyScheme = "apiKey";
    public const string OidcScheme = "oidc";
    public const string SignatureScheme = "signature";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(document);
        var authority = options.Value.Auth.Oidc.Authority;
        document.Info = new OpenApiInfo
        {
            Title = "ATP — Audit Trail Platform",
            Version = "v1",
            Description =
                "Multi-tenant, tamper-evident audit logs: one RFC 9162 Merkle tree per tenant, signed C2SP checkpoints, "
                + "inclusion and consistency proofs. Every error is an RFC 9457 problem (`application/problem+json`) whose "
                + "`type` is `https://atp.dev/problems/<kind>`; nothing is stored for a refused request. Authenticate with an "
                + "API key as a bearer token, an RFC 9421 signed request, or"
                + (authority is null ? " (when the cell configures `Atp:Auth:Oidc:Authority`) an OpenID Connect token." : " an OpenID Connect token from " + authority + "."),
            License = new OpenApiLicense { Name = "Apache-2.0", Identifier = "Apache-2.0" },
        };

        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal);
        var schemes = document.Components.SecuritySchemes;
        schemes[ApiKeyScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "ATP API key (atp_…)",
            Description = "An API key, `Authorization: Bearer atp_…`. Keys carry scopes (events:write, events:read, tenant:admin, exports:create; "
                + "platform:admin for platform keys); the scopes an operation needs are listed in its security requirement. "
                + "A tenant that requires signed requests refuses a bare key (401 signature-required).",
        };
        schemes[SignatureScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "Signature",
            Description = "RFC 9421 HTTP Message Signatures with a signing API key (created with `signing: true`): "
                + "`Signature-Input: atp=(\"@method\" \"@target-uri\" \"content-digest\");created=…;nonce=\"…\";keyid=\"key_…\";alg=\"hmac-sha256\"` "
                + "and `Signature: atp=:…:`, HMAC-SHA256 under the key's signing secret. A request with a body must cover "
                + "`content-digest` (RFC 9530, sha-256); `created` must be within the signature window of the server's clock and "
                + "each nonce is accepted once. `atp request` (docs/cli.md) signs requests.",
        };
        if (authority is not null)
        {
            schemes[OidcScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.OpenIdConnect,
                // As the JWT handler finds it: the authority, a slash, then the well-known path (OpenID Connect Discovery §4).
                OpenIdConnectUrl = new Uri(authority.ToString().TrimEnd('/') + "/.well-known/openid-configuration"),
                Description = $"An OpenID Connect access token (JWT) from {authority}: its `{options.Value.Auth.Oidc.TenantClaim}` claim names "
                    + $"the tenant, its `{options.Value.Auth.Oidc.RolesClaim}` claim the scopes.",
            };
        }
        else
        {
            schemes.Remove(OidcScheme);
        }

        // The finished schemas, once every operation has registered its own.
        foreach (var (name, schema) in document.Components.Schemas ?? new Dictionary<string, IOpenApiSchema>())
        {
            if (schema is OpenApiSchema concrete)
            {
                DescribeRawMembers(concrete, name);
                OmitOptionalFromRequired(concrete);
            }
        }

        // Its only users (raw JSON members) now describe themselves inline.
        document.Components.Schemas?.Remove("JsonElement");
        return Task.CompletedTask;
    }

    // Members typed JsonElement would all share one empty "JsonElement" component; each gets its own inline schema.
    private static void DescribeRawMembers(OpenApiSchema schema, string name)
    {
        if (schema.Properties is not { } properties)
        {
            return;
        }

        if (name is nameof(EventItem) or nameof(SearchItem))
        {
            properties["event"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "The stored event as it is in the leaf (RFC 8785 canonical JSON): what was sent, with its id and receivedAt. "
                    + "For proofs, hash the leaf bytes of GET …/log/entries/{index}, not a re-serialisation of this object.",
                Examples = [ContractExamples.Leaf()],
            };
        }
        else if (name is nameof(Export.CreateExportRequest) or nameof(Export.ExportResponse))
        {
            properties["filters"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object | JsonSchemaType.Null,
                Description = "Search filters (string values, the names of GET …/events: actor, actorType, action, targetType, targetId, outcome, q, from, to); absent or null for a complete export.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }
        else if (name is nameof(Schemas.RegisterSchemaRequest) or nameof(Schemas.SchemaVersionResponse) or nameof(Schemas.SchemaTypeResponse))
        {
            properties["schema"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object | JsonSchemaType.Boolean,
                Description = "A JSON Schema 2020-12 document for the events' data (docs/schemas.md); stored and served in RFC 8785 canonical form.",
            };
        }
        else if (name == nameof(Policy.ProposePolicyRequest))
        {
            properties["changes"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "The policy members to change; a member left out stays as it is, null returns it to the default (docs/policy.md).",
                AdditionalPropertiesAllowed = false,
                Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                {
                    ["requireSignedRequests"] = new OpenApiSchema { Type = JsonSchemaType.Boolean | JsonSchemaType.Null, Description = "Require RFC 9421 signed requests; null: the edition's default (enterprise: required)." },
                    ["requireRegisteredTypes"] = new OpenApiSchema { Type = JsonSchemaType.Boolean | JsonSchemaType.Null, Description = "Refuse events whose type has no registered schema; null: the default (false)." },
                },
            };
        }
        else if (name == nameof(UpdateTenantRequest))
        {
            properties["requireSignedRequests"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Boolean | JsonSchemaType.Null,
                Description = "Require RFC 9421 signed requests for this tenant; null returns to the edition's default (enterprise: required).",
            };
            properties["requireRegisteredTypes"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Boolean | JsonSchemaType.Null,
                Description = "Refuse events whose type has no registered schema (docs/schemas.md); null returns to the default (false).",
            };
            properties["limits"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Per-tenant rate limits; a member left out stays as it is.",
                AdditionalPropertiesAllowed = false,
                Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                {
                    ["ingestPerSecond"] = PerSecond(),
                    ["queryPerSecond"] = PerSecond(),
                },
            };

            // PATCH: every member may be left out.
            schema.Required?.Clear();
        }

        static OpenApiSchema PerSecond() => new()
        {
            Type = JsonSchemaType.Integer | JsonSchemaType.Null,
            Minimum = "1",
            Maximum = "10000000",
            Description = "Requests per second; null for the edition's default.",
        };
    }

    // The framework lists every constructor parameter as required; but a nullable member may be left out of a request,
    // and responses leave out null members (JsonIgnoreCondition.WhenWritingNull).
    private static void OmitOptionalFromRequired(OpenApiSchema schema)
    {
        if (schema.Required is not { Count: > 0 } required || schema.Properties is not { } properties)
        {
            return;
        }

        foreach (var (name, member) in properties)
        {
            var nullable = member.Type?.HasFlag(JsonSchemaType.Null) == true
                || member.OneOf?.Any(s => s.Type == JsonSchemaType.Null) == true
                || member.AnyOf?.Any(s => s.Type == JsonSchemaType.Null) == true;
            if (nullable)
            {
                required.Remove(name);
            }
        }
    }
}

