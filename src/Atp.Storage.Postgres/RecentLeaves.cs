namespace Atp.Storage.Postgres;

/// <summary>
/// The leaves this node committed lately, per tenant, so that its projector can index them without reading them back
/// from the log (that read was about a third of the database's projection work). Only committed leaves go in, and a
/// committed entry never changes, so a hit is exactly what the log holds; a miss (another node appended, the cache was
/// full, the node restarted) reads the log as before.
/// </summary>
internal sealed class RecentLeaves(long capacityBytes)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Window> _windows = new(StringComparer.Ordinal);
    private long _bytes;

    /// <summary>Bytes of leaves held now.</summary>
    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Records the committed leaf at <paramref name="index"/> of the tenant's log.</summary>
    public void Add(string tenantId, long index, byte[] leaf)
    {
        if (capacityBytes == 0)
        {
            return;
        }

        lock (_gate)
        {
            if (!_windows.TryGetValue(tenantId, out var window))
            {
                window = new Window(index);
                _windows[tenantId] = window;
            }
            else if (window.End != index)
            {
                // Another node appended in between (or entries were skipped): only a contiguous run is useful.
                Forget(window, window.Leaves.Count);
                window.First = index;
            }

            if (_bytes + leaf.Length > capacityBytes)
            {
                // Full: the projector is far behind or not running here; it reads the log for this tenant.
                Forget(window, window.Leaves.Count);
                _windows.Remove(tenantId);
                return;
            }

            window.Leaves.Add(leaf);
            _bytes += leaf.Length;
        }
    }

    /// <summary>The leaves <paramref name="first"/>..<paramref name="last"/> if all are held (else null); forgets every leaf up to <paramref name="last"/> either way.</summary>
    public byte[][]? Take(string tenantId, long first, long last)
    {
        lock (_gate)
        {
            if (!_windows.TryGetValue(tenantId, out var window))
            {
                return null;
            }

            byte[][]? taken = null;
            if (first >= window.First && last < window.End && last >= first)
            {
                taken = window.Leaves.GetRange((int)(first - window.First), (int)(last - first + 1)).ToArray();
            }

            Forget(window, (int)Math.Clamp(last + 1 - window.First, 0, window.Leaves.Count));
            if (window.Leaves.Count == 0)
            {
                _windows.Remove(tenantId);
            }

            return taken;
        }
    }

    private void Forget(Window window, int count)
    {
        for (var i = 0; i < count; i++)
        {
            _bytes -= window.Leaves[i].Length;
        }

        window.Leaves.RemoveRange(0, count);
        window.First += count;
    }

    private sealed class Window(long first)
    {
        public long First { get; set; } = first;

        public List<byte[]> Leaves { get; } = [];

        public long End => First + Leaves.Count;
    }
}
