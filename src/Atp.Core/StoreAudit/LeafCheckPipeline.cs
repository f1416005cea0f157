using System.Buffers;
using System.Collections.Concurrent;

namespace Atp.Core.StoreAudit;

/// <summary>
/// Leaf checks on a second core: the store's reader copies each row's leaf and stored leaf hash into a batch and
/// goes on reading (and folding the tree, <see cref="TreeAudit.CheckTree"/>), while one worker thread hashes full
/// batches. Two batches circulate, so reading and hashing overlap and memory stays at two batches. Findings are handed
/// back to the reader's thread (<see cref="Drain"/>), which reports them.
/// </summary>
internal sealed class LeafCheckPipeline : IDisposable
{
    private const int BatchRows = 4096;
    private const int BatchBytes = 4 << 20;

    private readonly string _tenantId;
    private readonly BlockingCollection<Batch> _full = new(boundedCapacity: 2);
    private readonly BlockingCollection<Batch> _free = new(boundedCapacity: 2);
    private readonly ConcurrentQueue<AuditFinding> _findings = new();
    private readonly Thread _worker;
    private Batch _current;

    public LeafCheckPipeline(string tenantId)
    {
        _tenantId = tenantId;
        _current = new Batch();
        _free.Add(new Batch());
        _worker = new Thread(Work) { IsBackground = true, Name = "atp leaf checks" };
        _worker.Start();
    }

    public void Add(ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash)
    {
        if (!_current.TryAdd(index, leaf, leafHash))
        {
            Flush();
            if (!_current.TryAdd(index, leaf, leafHash))
            {
                // A leaf larger than a whole batch: checked here.
                if (TreeAudit.CheckLeaf(_tenantId, index, leaf, leafHash) is { } finding)
                {
                    _findings.Enqueue(finding);
                }
            }
        }
    }

    /// <summary>Hands the current batch to the worker and continues in a free one (waits while both are busy).</summary>
    public void Flush()
    {
        if (_current.Count == 0)
        {
            return;
        }

        _full.Add(_current);
        _current = _free.Take();
    }

    /// <summary>Waits until every row added so far is checked.</summary>
    public void Complete()
    {
        Flush();
        _full.CompleteAdding();
        _worker.Join();
    }

    /// <summary>The findings of the batches checked so far.</summary>
    public IEnumerable<AuditFinding> Drain()
    {
        while (_findings.TryDequeue(out var finding))
        {
            yield return finding;
        }
    }

    public void Dispose()
    {
        if (!_full.IsAddingCompleted)
        {
            _full.CompleteAdding();
            _worker.Join();
        }

        _current.Dispose();
        while (_free.TryTake(out var batch))
        {
            batch.Dispose();
        }

        _full.Dispose();
        _free.Dispose();
    }

    private void Work()
    {
        foreach (var batch in _full.GetConsumingEnumerable())
        {
            for (var i = 0; i < batch.Count; i++)
            {
                var (index, offset, length, hashLength) = batch.Rows[i];
                var leaf = batch.Bytes.AsSpan(offset, length);
                var hash = batch.Bytes.AsSpan(offset + length, hashLength);
                if (TreeAudit.CheckLeaf(_tenantId, index, leaf, hash) is { } finding)
                {
                    _findings.Enqueue(finding);
                }
            }

            batch.Clear();
            _free.Add(batch);
        }
    }

    private sealed class Batch : IDisposable
    {
        public byte[] Bytes { get; } = ArrayPool<byte>.Shared.Rent(BatchBytes);

        public (ulong Index, int Offset, int Length, int HashLength)[] Rows { get; } = new (ulong, int, int, int)[BatchRows];

        public int Count { get; private set; }

        private int _used;

        public bool TryAdd(ulong index, ReadOnlySpan<byte> leaf, ReadOnlySpan<byte> leafHash)
        {
            if (Count == BatchRows || _used + leaf.Length + leafHash.Length > Bytes.Length)
            {
                return false;
            }

            leaf.CopyTo(Bytes.AsSpan(_used));
            leafHash.CopyTo(Bytes.AsSpan(_used + leaf.Length));
            Rows[Count++] = (index, _used, leaf.Length, leafHash.Length);
            _used += leaf.Length + leafHash.Length;
            return true;
        }

        public void Clear()
        {
            Count = 0;
            _used = 0;
        }

        public void Dispose() => ArrayPool<byte>.Shared.Return(Bytes);
    }
}
