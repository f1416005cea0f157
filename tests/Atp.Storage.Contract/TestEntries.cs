using System.Text;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// Pending entries shaped like real ones: canonical JSON leaf bytes that include the receive time, and a content hash
/// over the same JSON without it, so a re-sent event has the same content hash and a different leaf.
/// </summary>
public static class TestEntries
{
    public static PendingEntry Create(string payload, DateTimeOffset receivedAt, Guid? clientId = null)
    {
        var id = clientId ?? Guid.CreateVersion7();
        var content = $"{{\"id\":\"{id:D}\",\"payload\":\"{payload}\"}}";
        var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(
            $"{{\"receivedAt\":\"{receivedAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'}\",{content[1..]}"));
        var contentHash = Hash.Sha256(JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(content)));
        return new PendingEntry(id, clientId is not null, leaf, MerkleHasher.HashLeaf(leaf), contentHash, receivedAt);
    }
}
