namespace Atp.Core.Erasure;

/// <summary>
/// An erasure that waits for a second person (the tenant's policy has <c>requireErasureApproval</c>;
/// docs/classification.md, "Erasure"). It leaves <see cref="Pending"/> once: approved, rejected or expired; an approved
/// one then records its tombstone's index, or is marked <see cref="Failed"/> when the erasure did not happen.
/// </summary>
/// <param name="Id">The request's id (<c>era_</c> and 26 base32 characters).</param>
/// <param name="TenantId">The tenant whose subject is to be erased.</param>
/// <param name="Subject">The data subject (an actor id) while pending; null once the request left pending, so a closed request never keeps it.</param>
/// <param name="SubjectKeyId">The subject's data key id (a keyed hash of the subject), the only name the request is shown under.</param>
/// <param name="Reason">Why, as the requester said; it becomes the tombstone's reason.</param>
/// <param name="RequestedBy">The requester's person.</param>
/// <param name="CreatedAt">When it was requested.</param>
/// <param name="ExpiresAt">When it expires unless approved or rejected before.</param>
public sealed record ErasureApprovalRequest(
    string Id,
    string TenantId,
    string? Subject,
    string SubjectKeyId,
    string Reason,
    string RequestedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt)
{
    /// <summary>The longest subject stored (the erasure endpoint's own limit).</summary>
    public const int MaxSubjectLength = 256;

    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string Expired = "expired";

    /// <summary>Approved, but the erasure then did not happen (a legal hold found, the store refused): request it again.</summary>
    public const string Failed = "failed";

    /// <summary>The states a listing may be narrowed to.</summary>
    public static readonly IReadOnlyList<string> States = [Pending, Approved, Rejected, Expired, Failed];

    public string State { get; init; } = Pending;

    /// <summary>The person who approved or rejected it; null while pending and for expired requests.</summary>
    public string? ClosedBy { get; init; }

    public DateTimeOffset? ClosedAt { get; init; }

    /// <summary>Why it was rejected, as the rejecter said; or why the approved erasure failed.</summary>
    public string? CloseReason { get; init; }

    /// <summary>The index of the tombstone the approved erasure appended.</summary>
    public ulong? TombstoneIndex { get; init; }

    /// <summary>The state as of <paramref name="now"/>: a pending request past its expiry is expired even before that is stored.</summary>
    public string StateAt(DateTimeOffset now) => State == Pending && now >= ExpiresAt ? Expired : State;
}
