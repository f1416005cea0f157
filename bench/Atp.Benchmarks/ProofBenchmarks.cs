using Atp.Integrity;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// Proof generation at 1M leaves (every node held in a <see cref="MemoryNodeStore"/>) and 100M leaves (a tree of identical
/// leaves whose nodes are answered in O(1): the proof logic and its read pattern are the same, storage latency is
/// excluded and is counted separately as node reads per proof, see <see cref="NodeReads"/>).
/// </summary>
[MemoryDiagnoser]
public class ProofBenchmarks
{
    private const int Samples = 256;
    private ProofBuilder _builder = null!;
    private ulong[] _indices = [];
    private int _next;
    private ulong _verifyIndex;
    private Hash _verifyLeaf, _root, _oldRoot;
    private Hash[] _inclusion = [], _consistency = [];

    [Params(1_000_000UL, 100_000_000UL)]
    public ulong TreeSize { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        IMerkleNodeReader store = TreeSize <= 1_000_000 ? BuildMemoryStore(TreeSize) : new SyntheticNodeStore();
        _builder = new ProofBuilder(store);
        var random = new Random(7);
        _indices = Enumerable.Range(0, Samples).Select(_ => (ulong)random.NextInt64(1, (long)TreeSize)).ToArray();

        _verifyIndex = _indices[0];
        var leaf = new Hash[1];
        await store.ReadNodesAsync(new[] { new NodeId(0, _verifyIndex) }, leaf, CancellationToken.None);
        _verifyLeaf = leaf[0];
        _root = await _builder.RootAsync(TreeSize, CancellationToken.None);
        _oldRoot = await _builder.RootAsync(_verifyIndex, CancellationToken.None);
        _inclusion = await _builder.InclusionProofAsync(_verifyIndex, TreeSize, CancellationToken.None);
        _consistency = await _builder.ConsistencyProofAsync(_verifyIndex, TreeSize, CancellationToken.None);
        if (!VerifyInclusion() || !VerifyConsistency())
        {
            throw new InvalidOperationException("benchmark setup produced proofs that do not verify");
        }
    }

    [Benchmark(Description = "inclusion proof")]
    public async Task<Hash[]> Inclusion()
    {
        var index = _indices[_next++ % Samples];
        return await _builder.InclusionProofAsync(index, TreeSize, CancellationToken.None);
    }

    [Benchmark(Description = "consistency proof")]
    public async Task<Hash[]> Consistency()
    {
        var from = _indices[_next++ % Samples];
        return await _builder.ConsistencyProofAsync(from, TreeSize, CancellationToken.None);
    }

    [Benchmark(Description = "verify inclusion proof")]
    public bool VerifyInclusion() =>
        InclusionProof.Verify(_verifyIndex, TreeSize, _verifyLeaf, _inclusion, _root).IsValid;

    [Benchmark(Description = "verify consistency proof")]
    public bool VerifyConsistency() =>
        ConsistencyProof.Verify(_verifyIndex, TreeSize, _consistency, _oldRoot, _root).IsValid;

    internal static MemoryNodeStore BuildMemoryStore(ulong size)
    {
        var store = new MemoryNodeStore();
        var range = new CompactRange();
        var completed = new List<MerkleNode>(64);
        Span<byte> leaf = stackalloc byte[8];
        for (var i = 0UL; i < size; i++)
        {
            BitConverter.TryWriteBytes(leaf, i);
            completed.Clear();
            range.Append(MerkleHasher.HashLeaf(leaf), completed);
            foreach (var node in completed)
            {
                store.Add(node);
            }
        }

        return store;
    }
}

/// <summary>
/// A real tree of any size in O(log n) memory: every leaf is the same bytes, so every perfect node of one level has the
/// same hash. Proofs generated from it verify like any other; only the storage behind them is free.
/// </summary>
internal sealed class SyntheticNodeStore : IMerkleNodeReader
{
    private readonly Hash[] _levels = BuildLevels();

    private static Hash[] BuildLevels()
    {
        var levels = new Hash[64];
        levels[0] = MerkleHasher.HashLeaf("the same audit event"u8);
        for (var level = 1; level < 64; level++)
        {
            levels[level] = MerkleHasher.HashChildren(levels[level - 1], levels[level - 1]);
        }

        return levels;
    }

    public long Reads { get; private set; }

    public ValueTask ReadNodesAsync(ReadOnlyMemory<NodeId> ids, Memory<Hash> destination, CancellationToken cancellationToken)
    {
        var idSpan = ids.Span;
        var target = destination.Span;
        for (var i = 0; i < idSpan.Length; i++)
        {
            target[i] = _levels[idSpan[i].Level];
        }

        Reads += idSpan.Length;
        return ValueTask.CompletedTask;
    }
}
