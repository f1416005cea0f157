namespace Atp.Integrity.Tests;

/// <summary>A tree grown through <see cref="CompactRange"/> with every completed node kept in a <see cref="MemoryNodeStore"/>.</summary>
internal sealed class TreeFixture
{
    private readonly List<MerkleNode> _completed = [];

    public CompactRange Range { get; } = new();

    public MemoryNodeStore Store { get; } = new();

    public List<Hash> Roots { get; } = [MerkleHasher.EmptyRoot];

    public ProofBuilder Proofs => new(Store);

    public static TreeFixture WithLeaves(IEnumerable<byte[]> leaves)
    {
        var tree = new TreeFixture();
        foreach (var leaf in leaves)
        {
            tree.Append(leaf);
        }

        return tree;
    }

    public static TreeFixture WithSize(int size) => WithLeaves(Enumerable.Range(0, size).Select(LeafBytes));

    public static byte[] LeafBytes(int i) => System.Text.Encoding.UTF8.GetBytes($"leaf {i}");

    public void Append(byte[] leaf)
    {
        _completed.Clear();
        Range.Append(MerkleHasher.HashLeaf(leaf), _completed);
        foreach (var node in _completed)
        {
            Store.Add(node);
        }

        Roots.Add(Range.Root());
    }
}
