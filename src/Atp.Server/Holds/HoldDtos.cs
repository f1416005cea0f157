using Atp.Core.Holds;

namespace Atp.Server.Holds;

/// <summary>What a hold covers, as the API reads and writes it: every member given must match; an absent one does not narrow.</summary>
internal sealed record HoldScopeDto(IReadOnlyList<string>? EventTypes, string? ActorId, string? TargetId, DateTimeOffset? From, DateTimeOffset? Until)
{
    public static HoldScopeDto Of(HoldScope scope) => new(scope.EventTypes is { Count: > 0 } types ? types : null, scope.ActorId, scope.TargetId, scope.From, scope.Until);
}

/// <summary>POST …/holds body.</summary>
internal sealed record PlaceHoldRequest(HoldScopeDto? Scope, string? Reason);

/// <summary>POST …/holds/{id}/release body.</summary>
internal sealed record ReleaseHoldRequest(string? Reason);

/// <summary>A hold as the API shows it.</summary>
internal sealed record LegalHoldDto(
    string Id, HoldScopeDto Scope, string Reason, string Issuer, DateTimeOffset CreatedAt, bool Active, DateTimeOffset? ReleasedAt, string? ReleasedBy)
{
    public static LegalHoldDto Of(LegalHold hold) =>
        new(hold.Id, HoldScopeDto.Of(hold.Scope), hold.Reason, hold.Issuer, hold.CreatedAt, hold.IsActive, hold.ReleasedAt, hold.ReleasedBy);
}

/// <summary>GET …/holds.</summary>
internal sealed record LegalHoldListResponse(IReadOnlyList<LegalHoldDto> Items);
