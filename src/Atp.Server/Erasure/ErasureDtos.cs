using System.Text.Json.Serialization;
using Atp.Core.Erasure;
using Atp.Server.Events;

namespace Atp.Server.Erasure;

/// <summary>POST …/erasures body: the data subject (an actor id) and why it is erased.</summary>
internal sealed record ErasureRequest(string? Subject, string? Reason);

/// <summary>
/// The erasure's result: the subject's key id, whether a key was destroyed, whether the embedded store's files were
/// scrubbed of its old bytes, the receipt of the tombstone in the tenant's log, and the approved request it ran for.
/// </summary>
internal sealed record ErasureResponse(string SubjectKeyId, bool KeyDestroyed, bool FilesScrubbed, ReceiptDto Tombstone, string? RequestId = null);

/// <summary>The tombstone's <c>data</c>.</summary>
internal sealed record ErasureRecord(string SubjectKeyId, string Reason, bool KeyDestroyed);

/// <summary>
/// An erasure request awaiting (or past) approval, as the API shows it: never the subject, only its key id.
/// </summary>
internal sealed record ErasureRequestDto(
    string Id,
    string State,
    string SubjectKeyId,
    string Reason,
    string RequestedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string? ClosedBy,
    DateTimeOffset? ClosedAt,
    string? CloseReason,
    ulong? TombstoneIndex)
{
    public static ErasureRequestDto Of(ErasureApprovalRequest request, DateTimeOffset now) =>
        new(request.Id, request.StateAt(now), request.SubjectKeyId, request.Reason, request.RequestedBy, request.CreatedAt, request.ExpiresAt,
            request.ClosedBy, request.ClosedAt, request.CloseReason, request.TombstoneIndex);
}

/// <summary>GET …/erasures.</summary>
internal sealed record ErasureRequestListResponse(IReadOnlyList<ErasureRequestDto> Items);

/// <summary>POST …/erasures/{id}/reject body.</summary>
internal sealed record RejectErasureRequest(string? Reason);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ErasureRecord))]
internal sealed partial class ErasureJson : JsonSerializerContext;
