namespace Atp.Integrity.Tests;

/// <summary>
/// A deliberately naive transcription of RFC 9162 §2.1: MTH, PATH and SUBPROOF as the recursive definitions read,
/// over the whole leaf list. Used only to check the real implementation; memoises MTH so the exhaustive tests stay fast.
/// </summary>
internal sealed class ReferenceTree(IReadOnlyList<Hash> leaves)
{
    private readonly Dictionary<(int, int), Hash> _memo = [];

    public Hash Mth(int start, int end)
    {
        var n = end - start;
        if (n == 0)
        {
            return MerkleHasher.EmptyRoot;
        }

        if (n == 1)
        {
            return leaves[start];
        }

        if (_memo.TryGetValue((start, end), out var cached))
        {
            return cached;
        }

        var k = SplitPoint(n);
        var result = MerkleHasher.HashChildren(Mth(start, start + k), Mth(start + k, end));
        _memo[(start, end)] = result;
        return result;
    }

    // PATH(m, D[start:end])
    public List<Hash> Path(int m, int start, int end)
    {
        var n = end - start;
        if (n == 1)
        {
            return [];
        }

        var k = SplitPoint(n);
        if (m < k)
        {
            var path = Path(m, start, start + k);
            path.Add(Mth(start + k, end));
            return path;
        }
        else
        {
            var path = Path(m - k, start + k, end);
            path.Add(Mth(start, start + k));
            return path;
        }
    }

    // PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true)
    public List<Hash> Proof(int m, int n) => SubProof(m, 0, n, true);

    private List<Hash> SubProof(int m, int start, int end, bool b)
    {
        var n = end - start;
        if (m == n)
        {
            return b ? [] : [Mth(start, end)];
        }

        var k = SplitPoint(n);
        if (m <= k)
        {
            var proof = SubProof(m, start, start + k, b);
            proof.Add(Mth(start + k, end));
            return proof;
        }
        else
        {
            var proof = SubProof(m - k, start + k, end, false);
            proof.Add(Mth(start, start + k));
            return proof;
        }
    }

    // The largest power of two smaller than n.
    private static int SplitPoint(int n)
    {
        var k = 1;
        while (k << 1 < n)
        {
            k <<= 1;
        }

        return k;
    }
}
