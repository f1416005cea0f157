using System.Text.Json;

namespace Atp.Core.Events;

/// <summary>Who performed an action, or what it was performed on.</summary>
public sealed record Party(string Type, string Id, string? Name);

/// <summary>
/// The credential that submitted an event, recorded by ATP inside the leaf (clients cannot set it): an API key
/// (<c>type</c> <c>api-key</c>, <c>id</c> the key id) or an OpenID Connect subject (<c>type</c> <c>oidc</c>,
/// <c>id</c> the subject, <c>issuer</c> the token's issuer).
/// </summary>
public sealed record Submitter(string Type, string Id, string? Issuer);

/// <summary>Where the action came from.</summary>
public sealed record EventContext(string? Ip, string? UserAgent, string? RequestId);

/// <summary>
/// An audit event after validation, with its id and receive time assigned: the content of one log leaf.
/// </summary>
public sealed record AuditEvent(
    Guid Id,
    string Type,
    DateTimeOffset OccurredAt,
    DateTimeOffset ReceivedAt,
    Party Actor,
    string Action,
    IReadOnlyList<Party> Targets,
    string Outcome,
    EventContext? Context,
    JsonElement? Data)
{
    /// <summary>The data object's RFC 8785 form when already known (from validation); else it is derived from <see cref="Data"/>.</summary>
    public ReadOnlyMemory<byte> CanonicalData { get; init; }

    /// <summary>Who submitted it (null for entries ATP writes itself, and in leaves written before this was recorded).</summary>
    public Submitter? SubmittedBy { get; init; }
}
