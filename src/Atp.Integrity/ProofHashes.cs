namespace Atp.Integrity;

/// <summary>The trust boundary for proof hashes decoded from untrusted input.</summary>
internal static class ProofHashes
{
    public static bool TryConvert(IReadOnlyList<byte[]> raw, out Hash[] hashes, out string failure)
    {
        hashes = new Hash[raw.Count];
        for (var i = 0; i < raw.Count; i++)
        {
            if (raw[i] is null || !Hash.TryCreate(raw[i], out hashes[i]))
            {
                failure = $"proof hash {i} is {raw[i]?.Length ?? 0} bytes, not {Hash.Size}";
                return false;
            }
        }

        failure = string.Empty;
        return true;
    }
}
