using Microsoft.OpenApi;

namespace Atp.Server.OpenApi;

/// <summary>
/// The OpenAPI 3.1 contract served at <c>/openapi/v1.json</c>. Handlers read their bodies and most query strings
/// themselves (for exact size limits and named errors), so the framework cannot infer those: endpoints declare them
/// with metadata (<see cref="WithJsonBody{TBody}"/>, <c>Produces</c>, <see cref="WithParameter{TBuilder}"/>) and the transformers here add
/// what every endpoint shares (path parameters, security, the problem responses of the gateway).
/// </summary>
internal static class OpenApiExtensions
{
    public static IServiceCollection AddAtpOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1;
            options.AddSchemaTransformer<ContractSchemaTransformer>();
            options.AddOperationTransformer<ContractOperationTransformer>();
            options.AddDocumentTransformer<ContractDocumentTransformer>();
        });

    /// <summary>Declares (or describes more precisely) a query or header parameter the handler reads itself.</summary>
    public static TBuilder WithParameter<TBuilder>(
        this TBuilder builder,
        string name,
        string description,
        JsonSchemaType type = JsonSchemaType.String,
        string? format = null,
        string? example = null,
        bool required = false,
        ParameterLocation location = ParameterLocation.Query,
        string[]? values = null,
        long? minimum = null,
        long? maximum = null)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ParameterMetadata(name, location, description, type, format, example, required, values, minimum, maximum));

    /// <summary>
    /// Declares a JSON request body for the contract only. Not <c>Accepts</c>: that metadata also makes routing refuse other
    /// content types before the handler, which must keep answering them itself (its 415 problem, its size limits).
    /// </summary>
    public static RouteHandlerBuilder WithJsonBody<TBody>(this RouteHandlerBuilder builder, bool optional = false) =>
        builder.WithMetadata(new JsonBodyMetadata([typeof(TBody)], optional));

    /// <summary>
    /// A JSON request body that is any one of <paramref name="alternatives"/>. Client generators such as NSwag type the
    /// body as the first alternative, so put the most general one first.
    /// </summary>
    public static RouteHandlerBuilder WithJsonBodyOneOf(this RouteHandlerBuilder builder, params Type[] alternatives) =>
        builder.WithMetadata(new JsonBodyMetadata(alternatives, Optional: false));

    /// <summary>Problem responses of this endpoint beyond those every endpoint of its kind has (added by the transformer).</summary>
    public static RouteHandlerBuilder ProducesProblems(this RouteHandlerBuilder builder, params int[] statusCodes)
    {
        ArgumentNullException.ThrowIfNull(statusCodes);
        foreach (var status in statusCodes)
        {
            builder.ProducesProblem(status);
        }

        return builder;
    }
}

/// <summary>A parameter read by hand from the query string or headers, as the contract should show it.</summary>
internal sealed record ParameterMetadata(
    string Name,
    ParameterLocation Location,
    string Description,
    JsonSchemaType Type,
    string? Format,
    string? Example,
    bool Required,
    IReadOnlyList<string>? Values,
    long? Minimum,
    long? Maximum);

/// <summary>The JSON request body a handler reads itself: one shape, or one of several (a batch, or one event).</summary>
internal sealed record JsonBodyMetadata(IReadOnlyList<Type> Types, bool Optional);
