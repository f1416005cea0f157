using Atp.Integrity;

namespace Atp.Storage.Contract;

/// <summary>
/// RFC 9162 §2.1.1 MTH transcribed as the recursive definition reads, over the whole list of leaf bytes: deliberately
/// naive, so a store's tree head is checked against something that shares no code path with its sequencer.
/// </summary>
public static class ReferenceMerkle
{
    public static Hash Root(IReadOnlyList<byte[]> leaves) => Mth(leaves, 0, leaves.Count);

    private static Hash Mth(IReadOnlyList<byte[]> leaves, int start, int end)
    {
        var n = end - start;
        if (n == 0)
        {
            return Hash.Sha256([]);
        }

        if (n == 1)
        {
            return MerkleHasher.HashLeaf(leaves[start]);
        }

        // k = the largest power of two smaller than n.
        var k = 1;
        while (k * 2 < n)
        {
            k *= 2;
        }

        return MerkleHasher.HashChildren(Mth(leaves, start, start + k), Mth(leaves, start + k, end));
    }
}
