using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Atp.Server.OpenApi;

/// <summary>
/// Examples on every body the API takes or gives, and the <c>errors</c> member of ATP's problems.
/// </summary>
internal sealed class ContractSchemaTransformer : IOpenApiSchemaTransformer
{
    public Task TransformAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(context);
        // A body type first met as another body's property (a policy's active version) becomes the shared component
        // from there, so it gets its example in that context too.
        var type = context.JsonTypeInfo.Type;
        if (ContractExamples.For(type) is { } example)
        {
            schema.Examples = [example];
        }

        if (context.JsonPropertyInfo is null && type == typeof(ProblemDetails))
        {
            DescribeProblem(schema);
        }

        return Task.CompletedTask;
    }

    private static void DescribeProblem(OpenApiSchema schema)
    {
        schema.Description = "An RFC 9457 problem. `type` is `https://atp.dev/problems/<kind>` — switch on it; `title` is fixed per kind, "
            + "`detail` says what happened in this request.";
        schema.Properties ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        schema.Properties["requestId"] = new OpenApiSchema
        {
            Type = JsonSchemaType.String,
            Description = "The server's id of this request, as its log lines name it (RequestId): quote it when reporting a problem.",
        };
        schema.Properties["traceId"] = new OpenApiSchema
        {
            Type = JsonSchemaType.String,
            Pattern = "^[0-9a-f]{32}$",
            Description = "The W3C trace id of this request (the caller's traceparent when it sent one), as in the log lines (TraceId).",
        };
        schema.Properties["errors"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Array,
            Description = "On validation problems: one message per invalid member, or for events one object per error with the event's "
                + "index in the batch and a JSON pointer into it. Every error of the request is listed, so one round trip fixes it.",
            Items = new OpenApiSchema
            {
                AnyOf =
                [
                    new OpenApiSchema { Type = JsonSchemaType.String },
                    new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                        {
                            ["index"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Description = "The event's position in the request (0 for a single event)." },
                            ["pointer"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "RFC 6901 JSON pointer into that event." },
                            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
                        },
                    },
                ],
            },
        };
    }
}
