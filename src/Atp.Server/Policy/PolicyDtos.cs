using System.Text.Json;
using System.Text.Json.Serialization;
using Atp.Core.Policy;

namespace Atp.Server.Policy;

/// <summary>A policy document; null members mean the edition's default and are always written out.</summary>
internal sealed record PolicyDocumentDto(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] bool? RequireSignedRequests,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] bool? RequireRegisteredTypes,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ClassificationDto? Classification,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] RetentionDto? Retention,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] bool? RequireErasureApproval)
{
    public static PolicyDocumentDto Of(PolicyDocument document) =>
        new(
            document.RequireSignedRequests,
            document.RequireRegisteredTypes,
            document.Classification is { } c ? new ClassificationDto(c.Pii, c.Secret, c.SubjectTargetType) : null,
            document.Retention is { } retention ? RetentionDto.Of(retention) : null,
            document.RequireErasureApproval);
}

/// <summary>How long entries keep their content: days for every type (null: for ever) and days per event type (these win).</summary>
internal sealed record RetentionDto([property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? Days, IReadOnlyDictionary<string, int> Types)
{
    public static RetentionDto Of(RetentionPolicy retention) =>
        new(retention.Days, new SortedDictionary<string, int>(retention.Types.ToDictionary(), StringComparer.Ordinal));
}

/// <summary>The data fields a policy classifies, by JSON pointer, and whose they are: the first target of <see cref="SubjectTargetType"/> (null: the actor).</summary>
internal sealed record ClassificationDto(IReadOnlyList<string> Pii, IReadOnlyList<string> Secret, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? SubjectTargetType);

internal sealed record PolicyVersionDto(int Version, PolicyDocumentDto Document, string? ProposalId, string? ProposedBy, string? ApprovedBy, DateTimeOffset AppliedAt)
{
    public static PolicyVersionDto Of(PolicyVersion v) => new(v.Version, PolicyDocumentDto.Of(v.Document), v.ProposalId, v.ProposedBy, v.ApprovedBy, v.AppliedAt);
}

internal sealed record PolicyProposalDto(
    string Id, int BaseVersion, PolicyDocumentDto Document, string Reason, string State, string ProposedBy, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt,
    string? ClosedBy, DateTimeOffset? ClosedAt, string? CloseReason)
{
    public static PolicyProposalDto Of(PolicyProposal p, DateTimeOffset now) =>
        new(p.Id, p.BaseVersion, PolicyDocumentDto.Of(p.Document), p.Reason, p.StateAt(now), p.ProposedBy, p.CreatedAt, p.ExpiresAt, p.ClosedBy, p.ClosedAt, p.CloseReason);
}

internal sealed record PolicyHistoryDto(IReadOnlyList<PolicyVersionDto> Versions, IReadOnlyList<PolicyProposalDto> Proposals);

internal sealed record PolicyResponse(PolicyVersionDto Active, IReadOnlyList<PolicyProposalDto> Pending, PolicyHistoryDto History);

/// <summary>A proposed change: only the members of <see cref="Changes"/> that are present change (null: back to the default).</summary>
internal sealed record ProposePolicyRequest(JsonElement Changes, string? Reason);

internal sealed record RejectProposalRequest(string? Reason);
