using System.Text.Json;
using Atp.Core.Holds;

namespace Atp.Server.Holds;

/// <summary>
/// Reads and checks a hold's body, every error at once: a member the API does not know is refused rather than ignored,
/// since a misspelt <c>actorld</c> would silently widen the hold to the whole log.
/// </summary>
internal static class PlaceHoldReader
{
    public const int MaxReasonLength = 1_024;
    public const int MaxEventTypes = 100;
    public const int MaxEventTypeLength = 200;
    public const int MaxIdLength = 256;

    private static readonly string[] RequestMembers = ["scope", "reason"];
    private static readonly string[] ScopeMembers = ["eventTypes", "actorId", "targetId", "from", "until"];

    /// <summary>The scope and reason, or the errors (one per invalid member).</summary>
    public static (HoldScope? Scope, string? Reason, List<string> Errors) Read(JsonElement body)
    {
        var errors = new List<string>();
        if (body.ValueKind != JsonValueKind.Object)
        {
            errors.Add("The body must be a JSON object with scope and reason.");
            return (null, null, errors);
        }

        Unknown(body, RequestMembers, "", errors);
        if (body.TryGetProperty("scope", out var scopeJson) && scopeJson.ValueKind == JsonValueKind.Object)
        {
            Unknown(scopeJson, ScopeMembers, "scope.", errors);
        }

        if (errors.Count > 0)
        {
            return (null, null, errors);
        }

        PlaceHoldRequest? request;
        try
        {
            request = body.Deserialize<PlaceHoldRequest>(JsonBody.Options);
        }
        catch (JsonException e)
        {
            errors.Add($"{e.Path}: not valid (a wrong type or a repeated member): scope.eventTypes is an array of strings, actorId and targetId strings, from and until RFC 3339 times.");
            return (null, null, errors);
        }

        var reason = ReadReason(request?.Reason, errors);
        var scope = ReadScope(request?.Scope, errors);
        return errors.Count > 0 ? (null, null, errors) : (scope, reason, errors);
    }

    /// <summary>The trimmed reason, or an error.</summary>
    public static string? ReadReason(string? reason, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var trimmed = reason?.Trim();
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > MaxReasonLength || trimmed.Any(char.IsControl))
        {
            errors.Add($"reason: required, 1 to {MaxReasonLength} characters without control characters (name the matter or case, not a person's data)");
            return null;
        }

        return trimmed;
    }

    private static HoldScope? ReadScope(HoldScopeDto? scope, List<string> errors)
    {
        if (scope is null)
        {
            errors.Add("scope: required, an object with any of eventTypes, actorId, targetId, from, until ({} holds the tenant's whole log)");
            return null;
        }

        var types = scope.EventTypes;
        if (types is not null)
        {
            if (types.Count > MaxEventTypes)
            {
                errors.Add($"scope.eventTypes: at most {MaxEventTypes} types");
            }

            if (types.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > MaxEventTypeLength || t.Any(char.IsControl)))
            {
                errors.Add($"scope.eventTypes: each type 1 to {MaxEventTypeLength} characters, exactly as ingested");
            }
        }

        CheckId(scope.ActorId, "scope.actorId", errors);
        CheckId(scope.TargetId, "scope.targetId", errors);
        if (scope.From is { } from && scope.Until is { } until && from >= until)
        {
            errors.Add("scope.from: must be before scope.until");
        }

        // An empty list narrows nothing, as an absent one: stored as absent so the two cannot be told apart later.
        IReadOnlyList<string>? distinct = types is { Count: > 0 } ? [.. types.Distinct(StringComparer.Ordinal)] : null;
        return new HoldScope(distinct, scope.ActorId, scope.TargetId, scope.From, scope.Until);
    }

    private static void CheckId(string? id, string name, List<string> errors)
    {
        if (id is not null && (id.Length is 0 or > MaxIdLength || id.Any(char.IsControl)))
        {
            errors.Add($"{name}: 1 to {MaxIdLength} characters, exactly as ingested (leave it out to hold every party)");
        }
    }

    private static void Unknown(JsonElement json, string[] known, string prefix, List<string> errors)
    {
        foreach (var member in json.EnumerateObject())
        {
            if (!known.Contains(member.Name, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{prefix}{member.Name}: unknown; {(prefix.Length == 0 ? "the body" : "a scope")} holds {string.Join(", ", known)}");
            }
        }
    }
}
