using System.Text.Json;
using Atp.Core.Events;

namespace Atp.Server.OpenApi;

// The shapes EventReader accepts, for the contract only: ingestion validates the JSON itself (every error of a batch
// at once, with JSON pointers), so no handler binds these types.

/// <summary>One audit event as a client sends it; the server adds receivedAt and, when absent, the id.</summary>
internal sealed record EventInput(
    Guid? Id,
    string Type,
    DateTimeOffset OccurredAt,
    Party Actor,
    string Action,
    IReadOnlyList<Party>? Targets,
    string? Outcome,
    EventContext? Context,
    IReadOnlyDictionary<string, JsonElement>? Data,
    int? SchemaVersion = null);

/// <summary>Up to 1,000 events (1 MiB) appended together: all are stored, or none.</summary>
internal sealed record EventBatch(IReadOnlyList<EventInput> Events);
