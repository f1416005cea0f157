using System.Globalization;
using System.Text;
using Atp.Integrity;

namespace Atp.Core.Storage;

/// <summary>
/// The last tree head this cell signed a checkpoint for, per tenant, kept in <c>{DataDirectory}/atp-published-heads</c>
/// outside the store on purpose: <c>atp admin backup</c> leaves the file out and <c>atp admin restore</c> keeps the
/// target's copy, so restoring an older backup rolls the store back but not this record, and the server sees that the
/// stored tree is behind what it already published (<see cref="RollbackCheck"/>).
/// </summary>
/// <remarks>
/// An append-only text file, one line per record, fsynced before the checkpoints it covers are stored (and so
/// served): <c>head {tenant} {size} {root base64}</c>; <c>accept {tenant} {unix seconds}</c> (an operator's
/// <c>atp admin accept-rollback</c>, applied at the next start); <c>rebase {tenant} {size} {root base64}</c> (the accepted
/// head, which may be smaller). A line torn by a crash is ignored; the file is compacted when it opens. Sizes and roots
/// are public (they are in every checkpoint), so the file holds no secret.
/// </remarks>
public sealed class PublishedHeads : IDisposable
{
    /// <summary>The record's file name in the data directory.</summary>
    public const string FileName = "atp-published-heads";

    private readonly string _path;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, TreeHead> _heads = new(StringComparer.Ordinal);
    private readonly HashSet<string> _accepted = new(StringComparer.Ordinal);
    private FileStream? _file;
    private bool _torn;

    private PublishedHeads(string path) => _path = path;

    /// <summary>The record's path in <paramref name="dataDirectory"/>.</summary>
    public static string PathOf(string dataDirectory) => Path.Combine(Path.GetFullPath(dataDirectory), FileName);

    /// <summary>Reads the record of <paramref name="dataDirectory"/> (empty when there is none yet) and compacts it.</summary>
    public static PublishedHeads Open(string dataDirectory)
    {
        var heads = new PublishedHeads(PathOf(dataDirectory));
        heads.Load(compact: true);
        return heads;
    }

    /// <summary>Reads the record without rewriting it, for a tool running beside the server (which owns compaction).</summary>
    public static PublishedHeads Read(string dataDirectory)
    {
        var heads = new PublishedHeads(PathOf(dataDirectory));
        heads.Load(compact: false);
        return heads;
    }

    /// <summary>The last head published for the tenant; null when this cell never published one.</summary>
    public TreeHead? Find(string tenantId)
    {
        lock (_lock)
        {
            return _heads.GetValueOrDefault(tenantId);
        }
    }

    /// <summary>Every tenant with a published head, by tenant id.</summary>
    public IReadOnlyList<(string TenantId, TreeHead Head)> List()
    {
        lock (_lock)
        {
            return [.. _heads.OrderBy(h => h.Key, StringComparer.Ordinal).Select(h => (h.Key, h.Value))];
        }
    }

    /// <summary>Whether an operator accepted the tenant's rollback and the server has not applied it yet.</summary>
    public bool IsAccepted(string tenantId)
    {
        lock (_lock)
        {
            return _accepted.Contains(tenantId);
        }
    }

    /// <summary>
    /// Records the heads about to be signed, in one write and one fsync (the sealer calls this once per pass, before it
    /// stores any of the pass's checkpoints). A head not larger than the one recorded changes nothing.
    /// </summary>
    public void Record(IReadOnlyCollection<(string TenantId, TreeHead Head)> heads)
    {
        ArgumentNullException.ThrowIfNull(heads);
        lock (_lock)
        {
            var lines = new StringBuilder();
            var grown = new List<(string TenantId, TreeHead Head)>();
            foreach (var (tenantId, head) in heads)
            {
                if (_heads.TryGetValue(tenantId, out var known) && known.Size >= head.Size)
                {
                    continue;
                }

                lines.Append(HeadLine("head", tenantId, head));
                grown.Add((tenantId, head));
            }

            if (lines.Length == 0)
            {
                return;
            }

            // Known only once durable: a failed write (a full disk) leaves the heads to be recorded again next pass.
            Append(lines.ToString());
            foreach (var (tenantId, head) in grown)
            {
                _heads[tenantId] = head;
            }
        }
    }

    /// <summary>Replaces the tenant's head with the stored one an operator accepted, and clears the acceptance.</summary>
    public void Rebase(string tenantId, TreeHead head)
    {
        lock (_lock)
        {
            Append(HeadLine("rebase", tenantId, head));
            _heads[tenantId] = head;
            _accepted.Remove(tenantId);
        }
    }

    /// <summary>
    /// An operator's acceptance of the tenant's rolled-back log (<c>atp admin accept-rollback</c>), applied by the server
    /// at its next start. Written with O_APPEND and fsynced, so it is safe beside a running server's appends.
    /// </summary>
    public static void Accept(string dataDirectory, string tenantId, DateTimeOffset at)
    {
        ValidateTenant(tenantId);
        var path = PathOf(dataDirectory);
        var line = string.Create(CultureInfo.InvariantCulture, $"accept {tenantId} {at.ToUnixTimeSeconds()}\n");
        var bytes = Encoding.UTF8.GetBytes(EndsTorn(path) ? "\n" + line : line);
        using var file = OpenAppend(path);
        file.Write(bytes);
        file.Flush(flushToDisk: true);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _file?.Dispose();
            _file = null;
        }
    }

    private static string HeadLine(string kind, string tenantId, TreeHead head)
    {
        ValidateTenant(tenantId);
        return string.Create(CultureInfo.InvariantCulture, $"{kind} {tenantId} {head.Size} {head.Root.ToBase64()}\n");
    }

    // Tenant ids are URL-safe words; a space or line break would break the line format.
    private static void ValidateTenant(string tenantId)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);
        if (tenantId.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw new ArgumentException("A tenant id holds no white space.", nameof(tenantId));
        }
    }

    private void Append(string lines)
    {
        _file ??= OpenAppend(_path);
        try
        {
            // After a failed write the file may end in a torn line: start on a line of its own.
            _file.Write(Encoding.UTF8.GetBytes(_torn ? "\n" + lines : lines));
            _file.Flush(flushToDisk: true);
            _torn = false;
        }
        catch (IOException)
        {
            // A torn line is ignored on load; the next append starts on a fresh stream and a fresh line.
            _file.Dispose();
            _file = null;
            _torn = true;
            throw;
        }
    }

    // Whether the file ends inside a line (a write torn by a crash), so an append must start a new one.
    private static bool EndsTorn(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (file.Length == 0)
        {
            return false;
        }

        file.Seek(-1, SeekOrigin.End);
        return file.ReadByte() != '\n';
    }

    private static FileStream OpenAppend(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return new FileStream(path, options);
    }

    private void Load(bool compact)
    {
        if (!File.Exists(_path))
        {
            return;
        }

        var lines = 0;
        foreach (var line in File.ReadLines(_path, Encoding.UTF8))
        {
            lines++;
            var parts = line.Split(' ');
            switch (parts)
            {
                case ["head", var tenant, var size, var root] when TryParseHead(size, root, out var head):
                    if (!_heads.TryGetValue(tenant, out var known) || known.Size < head.Size)
                    {
                        _heads[tenant] = head;
                    }

                    break;
                case ["rebase", var tenant, var size, var root] when TryParseHead(size, root, out var head):
                    _heads[tenant] = head;
                    _accepted.Remove(tenant);
                    break;
                case ["accept", var tenant, _]:
                    _accepted.Add(tenant);
                    break;
                default:
                    // A line torn by a crash mid-write (only ever the last one): what it would have recorded was not
                    // fsynced, so no checkpoint it covers was stored either.
                    break;
            }
        }

        if (compact && lines > _heads.Count + _accepted.Count)
        {
            Compact();
        }
    }

    // Rewrites the record with one line per tenant: a temporary file, fsynced, renamed over the old one.
    private void Compact()
    {
        var text = new StringBuilder();
        foreach (var (tenant, head) in _heads.OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            text.Append(HeadLine("head", tenant, head));
        }

        foreach (var tenant in _accepted.Order(StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"accept {tenant} 0\n");
        }

        var temporary = _path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temporary, options))
        {
            file.Write(Encoding.UTF8.GetBytes(text.ToString()));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, _path, overwrite: true);
    }

    private static bool TryParseHead(string size, string root, out TreeHead head)
    {
        head = null!;
        if (!ulong.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var parsedSize) || !Hash.TryParseBase64(root, out var parsedRoot))
        {
            return false;
        }

        head = new TreeHead(parsedSize, parsedRoot);
        return true;
    }
}

/// <summary>
/// Whether a tenant's stored tree still holds what this cell published for it: at least the published size, with the
/// published root at that size. A store restored from an older backup fails it, and the server then signs nothing more
/// for the tenant until an operator accepts the rollback.
/// </summary>
public static class RollbackCheck
{
    /// <summary>Null when the stored tree covers <paramref name="published"/>; otherwise what does not match, for an operator.</summary>
    public static async Task<string?> CheckAsync(ILogStore store, string tenantId, TreeHead published, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(published);
        var stored = await store.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false);
        var storedSize = stored?.Size ?? 0;
        if (storedSize < published.Size)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the stored tree has {storedSize} entries but this cell already published a checkpoint for {published.Size} (the store was rolled back, e.g. restored from an older backup)");
        }

        if (published.Size == 0)
        {
            return null;
        }

        try
        {
            var root = storedSize == published.Size ? stored!.Root : await new ProofBuilder(store.NodeReader(tenantId)).RootAsync(published.Size, cancellationToken).ConfigureAwait(false);
            return root == published.Root
                ? null
                : string.Create(CultureInfo.InvariantCulture, $"the stored tree's root at size {published.Size} differs from the root this cell published for that size (the store holds a different log)");
        }
        catch (InvalidOperationException e)
        {
            return $"a stored Merkle node needed to check the published head at size {published.Size} is missing: {e.Message}";
        }
    }
}
