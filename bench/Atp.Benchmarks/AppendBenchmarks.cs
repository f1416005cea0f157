using System.Security.Cryptography;
using Atp.Integrity;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// Appending leaves to the tree (leaf hash + right-edge update + collecting completed nodes for the store) against
/// the raw SHA-256 of the same leaf bytes, measured in the same run. Leaves are audit-event sized.
/// </summary>
[MemoryDiagnoser]
public class AppendBenchmarks
{
    private const int Leaves = 10_000;
    private byte[][] _leaves = [];
    private readonly List<MerkleNode> _completed = new(64);

    [Params(256, 512, 1024)]
    public int LeafBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _leaves = new byte[Leaves][];
        for (var i = 0; i < Leaves; i++)
        {
            _leaves[i] = new byte[LeafBytes];
            random.NextBytes(_leaves[i]);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Leaves, Description = "raw SHA-256 of the leaf bytes (OpenSSL low-level)")]
    public byte RawSha256()
    {
        Span<byte> digest = stackalloc byte[32];
        byte acc = 0;
        foreach (var leaf in _leaves)
        {
            Sha256Engine.HashRaw(leaf, digest);
            acc ^= digest[0];
        }

        return acc;
    }

    [Benchmark(OperationsPerInvoke = Leaves, Description = "raw SHA-256 of the leaf bytes (.NET SHA256.HashData)")]
    public byte RawSha256Framework()
    {
        Span<byte> digest = stackalloc byte[32];
        byte acc = 0;
        foreach (var leaf in _leaves)
        {
            SHA256.HashData(leaf, digest);
            acc ^= digest[0];
        }

        return acc;
    }

    [Benchmark(OperationsPerInvoke = Leaves, Description = "append leaf (hash + tree + node list)")]
    public Hash Append()
    {
        var range = new CompactRange();
        foreach (var leaf in _leaves)
        {
            _completed.Clear();
            range.Append(MerkleHasher.HashLeaf(leaf), _completed);
        }

        return range.Root();
    }
}
