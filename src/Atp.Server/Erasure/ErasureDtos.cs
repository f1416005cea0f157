using System.Text.Json.Serialization;
using Atp.Server.Events;

namespace Atp.Server.Erasure;

/// <summary>POST …/erasures body: the data subject (an actor id) and why it is erased.</summary>
internal sealed record ErasureRequest(string? Subject, string? Reason);

/// <summary>
/// The erasure's result: the subject's key id, whether a key was destroyed, whether the embedded store's files were
/// scrubbed of its old bytes, and the receipt of the tombstone in the tenant's log.
/// </summary>
internal sealed record ErasureResponse(string SubjectKeyId, bool KeyDestroyed, bool FilesScrubbed, ReceiptDto Tombstone);

/// <summary>The tombstone's <c>data</c>.</summary>
internal sealed record ErasureRecord(string SubjectKeyId, string Reason, bool KeyDestroyed);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ErasureRecord))]
internal sealed partial class ErasureJson : JsonSerializerContext;
