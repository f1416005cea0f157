namespace Atp.Core.StoreAudit;

/// <summary>
/// One range of rows as a scanning thread leaves it for the in-order tree check: each leaf already checked against its
/// stored hash where the store's reader holds the bytes (no copy of the leaf), and only what the tree check needs kept —
/// index, leaf length, stored leaf hash and stored nodes, about 70 bytes a row whatever the leaf's size. Reused from
/// range to range by one thread.
/// </summary>
internal sealed class ScannedChunk(string tenantId)
{
    private readonly List<Row> _rows = [];
    private readonly List<AuditFinding> _leafFindings = [];
    private byte[] _bytes = new byte[1 << 16];
    private int _used;

    public void Clear()
    {
        _rows.Clear();
        _leafFindings.Clear();
        _used = 0;
    }

    /// <summary>A <see cref="StoredRowVisitor"/>: checks the leaf now and keeps the rest for <see cref="Fold"/>.</summary>
    public void Visit(ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash, ReadOnlySpan<byte> nodes)
    {
        if (TreeAudit.CheckLeaf(tenantId, index, leaf, leafHash) is { } finding)
        {
            _leafFindings.Add(finding);
        }

        var needed = leafHash.Length + nodes.Length;
        if (_used + needed > _bytes.Length)
        {
            Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _used + needed));
        }

        leafHash.CopyTo(_bytes.AsSpan(_used));
        nodes.CopyTo(_bytes.AsSpan(_used + leafHash.Length));
        _rows.Add(new Row(index, leaf.Length, _used, leafHash.Length, nodes.Length));
        _used += needed;
    }

    /// <summary>Hands the rows, in index order, to <paramref name="audit"/>, each row's leaf finding (if any) reported just before it.</summary>
    public void Fold(TreeAudit audit)
    {
        var nextFinding = 0;
        foreach (var row in _rows)
        {
            while (nextFinding < _leafFindings.Count && _leafFindings[nextFinding].Index == row.Index)
            {
                audit.Report(_leafFindings[nextFinding++]);
            }

            var hash = _bytes.AsSpan(row.Offset, row.HashLength);
            var nodes = _bytes.AsSpan(row.Offset + row.HashLength, row.NodesLength);
            audit.CheckTree(row.Index, row.LeafLength, hash, nodes);
        }
    }

    private readonly record struct Row(ulong Index, int LeafLength, int Offset, int HashLength, int NodesLength);
}
