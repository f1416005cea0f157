using System.Text.Json;

namespace Atp.Server.Schemas;

/// <summary>PUT body: the JSON Schema 2020-12 document, and optionally the type's compatibility mode to set and check under.</summary>
internal sealed record RegisterSchemaRequest(JsonElement Schema, string? Compatibility);

/// <summary>PUT …/compatibility body.</summary>
internal sealed record SetCompatibilityRequest(string? Compatibility);

/// <summary>One version of a type's schema.</summary>
internal sealed record SchemaVersionResponse(string Type, int Version, string Compatibility, JsonElement Schema, DateTimeOffset CreatedAt);

/// <summary>A registered type: its mode, every version number, and its latest version's schema.</summary>
internal sealed record SchemaTypeResponse(string Type, string Compatibility, int LatestVersion, IReadOnlyList<int> Versions, JsonElement Schema, DateTimeOffset CreatedAt);

internal sealed record SchemaTypeSummary(string Type, string Compatibility, int LatestVersion);

internal sealed record SchemaTypeListResponse(IReadOnlyList<SchemaTypeSummary> Items);

internal sealed record CompatibilityResponse(string Type, string Compatibility, int LatestVersion);

/// <summary>One breaking change in a 409 schema-incompatible problem's <c>errors</c>.</summary>
internal sealed record BreakingChangeDto(int Version, string Direction, string Pointer, string Reason);
