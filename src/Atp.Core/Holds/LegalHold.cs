namespace Atp.Core.Holds;

/// <summary>
/// What a legal hold covers: every event of the tenant that matches all the members given. A null (or empty) member
/// does not narrow the scope, so a hold with no member set covers the tenant's whole log.
/// </summary>
/// <param name="EventTypes">The event types covered, exactly as ingested.</param>
/// <param name="ActorId">Events whose actor has this id.</param>
/// <param name="TargetId">Events with a target of this id.</param>
/// <param name="From">Events that occurred at or after this instant (the event's own time).</param>
/// <param name="Until">Events that occurred before this instant.</param>
public sealed record HoldScope(
    IReadOnlyList<string>? EventTypes,
    string? ActorId,
    string? TargetId,
    DateTimeOffset? From,
    DateTimeOffset? Until)
{
    /// <summary>Whether an event with these members falls under the scope.</summary>
    public bool Covers(string type, string actorId, IEnumerable<string> targetIds, DateTimeOffset occurredAt)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(actorId);
        ArgumentNullException.ThrowIfNull(targetIds);
        if (EventTypes is { Count: > 0 } types && !types.Contains(type, StringComparer.Ordinal))
        {
            return false;
        }

        if (ActorId is not null && !string.Equals(ActorId, actorId, StringComparison.Ordinal))
        {
            return false;
        }

        if (TargetId is not null && !targetIds.Contains(TargetId, StringComparer.Ordinal))
        {
            return false;
        }

        return (From is not { } from || occurredAt >= from) && (Until is not { } until || occurredAt < until);
    }

    /// <summary>
    /// Whether the scope may cover an event about <paramref name="subject"/> (as its actor or one of its targets):
    /// true when it names the subject, or names no party at all (then its types and time range decide, which only
    /// the subject's events can tell).
    /// </summary>
    public bool MayCoverSubject(string subject) =>
        (ActorId is null && TargetId is null)
        || string.Equals(ActorId, subject, StringComparison.Ordinal)
        || string.Equals(TargetId, subject, StringComparison.Ordinal);
}

/// <summary>A legal hold on part of a tenant's log: while active, what it covers is neither purged nor erased.</summary>
/// <param name="Id">The hold's id (<c>hold_</c> and 26 base32 characters, like other ATP ids, or a UUID — the store keeps it as text).</param>
/// <param name="TenantId">The tenant whose log it holds.</param>
/// <param name="Scope">What it covers.</param>
/// <param name="Reason">Why (free text, e.g. the matter or case number).</param>
/// <param name="Issuer">Who placed it (the caller's person: <c>oidc:…</c> or the key's owner).</param>
/// <param name="CreatedAt">When it was placed.</param>
/// <param name="ReleasedAt">When it was released; null while active.</param>
/// <param name="ReleasedBy">Who released it.</param>
public sealed record LegalHold(
    string Id,
    string TenantId,
    HoldScope Scope,
    string Reason,
    string Issuer,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ReleasedAt,
    string? ReleasedBy)
{
    /// <summary>Whether the hold still applies.</summary>
    public bool IsActive => ReleasedAt is null;
}
