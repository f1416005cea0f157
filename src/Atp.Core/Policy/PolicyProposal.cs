namespace Atp.Core.Policy;

/// <summary>
/// A proposed change of a tenant's policy: the full document it would make active, over <see cref="BaseVersion"/>.
/// It leaves <see cref="Pending"/> once: applied, rejected (or withdrawn by its proposer), expired, or stale.
/// </summary>
public sealed record PolicyProposal(
    string Id,
    int BaseVersion,
    PolicyDocument Document,
    string Reason,
    string ProposedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt)
{
    public const string Pending = "pending";
    public const string Applied = "applied";
    public const string Rejected = "rejected";
    public const string Expired = "expired";

    /// <summary>Another proposal was applied first, so this one's base version is no longer the active one.</summary>
    public const string Stale = "stale";

    public string State { get; init; } = Pending;

    /// <summary>The person who closed it (approver, rejecter); null while pending and for expired or stale proposals.</summary>
    public string? ClosedBy { get; init; }

    public DateTimeOffset? ClosedAt { get; init; }

    /// <summary>Why it was rejected, as the rejecter said.</summary>
    public string? CloseReason { get; init; }

    /// <summary>The state as of <paramref name="now"/>: a pending proposal past its expiry is expired even before that is stored.</summary>
    public string StateAt(DateTimeOffset now) => State == Pending && now >= ExpiresAt ? Expired : State;
}

/// <summary>What applying a policy version did.</summary>
public enum PolicyApplyResult
{
    Applied,

    /// <summary>The version number is taken: another version was applied since the caller read the active one.</summary>
    Stale,

    /// <summary>The proposal was no longer pending (closed concurrently).</summary>
    NotPending,
}
