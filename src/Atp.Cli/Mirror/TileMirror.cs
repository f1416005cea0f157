using System.Buffers.Binary;
using System.Text;
using Atp.Core.Tiles;
using Atp.Integrity;

namespace Atp.Cli.Mirror;

/// <summary>Tiles handled so far, for progress display.</summary>
internal readonly record struct MirrorProgress(long Done, long Total);

/// <summary>What a mirror run did: the checkpoint now mirrored, or why the log was refused.</summary>
internal sealed record MirrorResult(Checkpoint? Checkpoint, long Downloaded, long Reused, long Replaced, string? Failure);

/// <summary>
/// Mirrors one log in the C2SP tlog-tiles layout into a directory and verifies every tile before it is kept: the
/// right-edge (partial) tiles must fold to the signed root, every full tile must hash (RFC 9162 MTH of its 256 hashes)
/// to its hash one level up, and every entry in a bundle must hash to its level-0 tile hash. Work goes top-down, so
/// only the upper levels (1/256 of the hashes) are held in memory while level 0 and the entries stream through.
/// A file already on disk is reused when it verifies and replaced when it does not; the checkpoint seen last time
/// must be a prefix of the new tree (its root recomputed from the new tiles), else nothing of the new tree is kept.
/// </summary>
internal sealed class TileMirror(TileSource source, string directory)
{
    public const string CheckpointFile = "checkpoint";
    private const int Height = 8;

    private readonly Dictionary<(int Level, ulong Index), Hash[]> _upper = [];
    private readonly List<(TileAddress Tile, byte[] Bytes)> _pendingUpper = [];
    private long _downloaded;
    private long _reused;
    private long _replaced;
    private long _done;
    private long _total;
    private IProgress<MirrorProgress>? _progress;

    public async Task<MirrorResult> RunAsync(byte[] note, Checkpoint checkpoint, Checkpoint? previous, IProgress<MirrorProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var size = checkpoint.Size;
        _progress = progress;
        if (previous is not null && Refusal(previous, checkpoint) is { } refused)
        {
            return Fail(refused);
        }

        var tiles = TileAddress.AllFor(size).ToList();
        _total = tiles.Count;
        var top = tiles.Where(t => !t.IsEntries).Select(t => t.Level).DefaultIfEmpty(-1).Max();

        // 1. The right edge: the partial tile of each level holds exactly the hashes the root folds.
        for (var level = top; level >= 0; level--)
        {
            var width = TileAddress.WidthIn(level, (size >> (Height * level)) / TileAddress.FullWidth, size);
            if (width is > 0 and < TileAddress.FullWidth)
            {
                var tile = new TileAddress(level, (size >> (Height * level)) / TileAddress.FullWidth, width, IsEntries: false);
                var hashes = await LoadHashTileAsync(tile, expected: null, cancellationToken).ConfigureAwait(false);
                if (hashes is null)
                {
                    return Fail($"{tile.Path} is not {width} hashes");
                }

                _upper[(level, tile.Index)] = hashes;
            }
        }

        var root = RootOf(size);
        if (root != checkpoint.Root)
        {
            return Fail($"the right-edge tiles fold to root {root.ToBase64()}, not the checkpoint's {checkpoint.Root.ToBase64()} (tree size {size})");
        }

        // 2. Full tiles of the upper levels, each against its hash one level up (already verified).
        for (var level = top - 1; level >= 1; level--)
        {
            foreach (var tile in tiles.Where(t => !t.IsEntries && t.Level == level && t.IsFull))
            {
                var hashes = await LoadHashTileAsync(tile, ParentHash(tile), cancellationToken).ConfigureAwait(false);
                if (hashes is null)
                {
                    return Fail($"{tile.Path} does not hash to its entry in the tile above");
                }

                _upper[(level, tile.Index)] = hashes;
            }
        }

        // 3. The old tree must be a prefix of the new one before anything of the new one is kept.
        if (previous is not null && previous.Size > 0)
        {
            var oldRoot = await OldRootAsync(previous.Size, size, cancellationToken).ConfigureAwait(false);
            if (oldRoot != previous.Root)
            {
                return Fail($"the log is not consistent with the checkpoint mirrored last time (tree size {previous.Size}, root {previous.Root.ToBase64()}): "
                    + $"the new tree's first {previous.Size} entries have root {oldRoot?.ToBase64() ?? "(unavailable)"}; the log forked or was rewritten. Nothing of the new tree was kept.");
            }
        }

        await FlushPendingAsync(cancellationToken).ConfigureAwait(false);

        // 4. Level 0 and the entry bundles, one 256-entry step at a time.
        for (ulong n = 0; n * TileAddress.FullWidth < size; n++)
        {
            var width = TileAddress.WidthIn(0, n, size);
            var tile = new TileAddress(0, n, width, IsEntries: false);
            Hash[]? leaves;
            if (width == TileAddress.FullWidth)
            {
                leaves = await LoadHashTileAsync(tile, ParentHash(tile), cancellationToken).ConfigureAwait(false);
                if (leaves is null)
                {
                    return Fail($"{tile.Path} does not hash to its entry in the tile above");
                }

                await FlushPendingAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                leaves = _upper[(0, n)];
            }

            var bundle = tile with { IsEntries = true };
            if (!await LoadBundleAsync(bundle, leaves, cancellationToken).ConfigureAwait(false))
            {
                return Fail($"{bundle.Path}: its entries do not hash to the leaf hashes of {tile.Path}");
            }
        }

        await WriteFileAsync(CheckpointFile, note, cancellationToken).ConfigureAwait(false);
        return new MirrorResult(checkpoint, _downloaded, _reused, _replaced, null);
    }

    /// <summary>Why a new checkpoint cannot follow the previous one, before any tile is read (null when it may).</summary>
    private static string? Refusal(Checkpoint previous, Checkpoint current)
    {
        if (previous.Origin != current.Origin)
        {
            return $"the server's log is '{current.Origin}', but this directory mirrors '{previous.Origin}'";
        }

        return current.Size < previous.Size
            ? $"the log shrank: the checkpoint mirrored last time has tree size {previous.Size}, the server's now {current.Size}"
            : null;
    }

    private Hash RootOf(ulong size)
    {
        // Each edge subtree of level 8L+r spans 2^r consecutive hashes of level L, all in that level's partial tile.
        var edge = CompactRange.EdgeNodes(size);
        var hashes = new Hash[edge.Length];
        for (var i = 0; i < edge.Length; i++)
        {
            var level = edge[i].Level / Height;
            var span = 1 << (edge[i].Level % Height);
            var first = edge[i].Index << (edge[i].Level % Height);
            var tile = _upper[(level, first / TileAddress.FullWidth)];
            hashes[i] = Fold(tile.AsSpan((int)(first % TileAddress.FullWidth), span));
        }

        return new CompactRange(size, hashes).Root();
    }

    private async Task<Hash?> OldRootAsync(ulong oldSize, ulong size, CancellationToken cancellationToken)
    {
        var edge = CompactRange.EdgeNodes(oldSize);
        var hashes = new Hash[edge.Length];
        for (var i = 0; i < edge.Length; i++)
        {
            var level = edge[i].Level / Height;
            var span = 1 << (edge[i].Level % Height);
            var first = edge[i].Index << (edge[i].Level % Height);
            var index = first / TileAddress.FullWidth;
            if (!_upper.TryGetValue((level, index), out var tile))
            {
                // Only level 0 is not kept in memory: that one tile of the new tree, verified against its parent.
                var address = new TileAddress(level, index, TileAddress.WidthIn(level, index, size), IsEntries: false);
                tile = await LoadHashTileAsync(address, ParentHash(address), cancellationToken).ConfigureAwait(false);
                if (tile is null)
                {
                    return null;
                }

                _upper[(level, index)] = tile;
            }

            hashes[i] = Fold(tile.AsSpan((int)(first % TileAddress.FullWidth), span));
        }

        return new CompactRange(oldSize, hashes).Root();
    }

    /// <summary>The verified hash a full tile must fold to: its slot in the tile one level up.</summary>
    private Hash ParentHash(TileAddress tile) =>
        _upper[(tile.Level + 1, tile.Index / TileAddress.FullWidth)][(int)(tile.Index % TileAddress.FullWidth)];

    /// <summary>RFC 9162 MTH of a power-of-two run of hashes taken as leaves of a subtree.</summary>
    private static Hash Fold(ReadOnlySpan<Hash> hashes)
    {
        var range = new CompactRange();
        foreach (var hash in hashes)
        {
            // CompactRange appends leaf hashes and builds nodes above them: exactly a subtree over these hashes.
            range.Append(hash);
        }

        return range.Root();
    }

    /// <summary>
    /// A hash tile from disk or the server, parsed; checked against <paramref name="expected"/> when given (a full
    /// tile), else only its length (a partial tile, checked through the root). Null when the server's copy fails.
    /// </summary>
    private async Task<Hash[]?> LoadHashTileAsync(TileAddress tile, Hash? expected, CancellationToken cancellationToken)
    {
        var path = PathOf(tile);
        if (File.Exists(path))
        {
            var local = ParseHashes(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false), tile.Width);
            if (local is not null && (expected is null || Fold(local) == expected.Value))
            {
                _reused++;
                Count();
                return local;
            }

            _replaced++;
            File.Delete(path);
        }

        var bytes = await source.TileAsync(tile, cancellationToken).ConfigureAwait(false);
        _downloaded++;
        var hashes = ParseHashes(bytes, tile.Width);
        if (hashes is null || (expected is not null && Fold(hashes) != expected.Value))
        {
            return null;
        }

        // Kept only after the consistency check (upper tiles) or at once (level 0, past that check).
        _pendingUpper.Add((tile, bytes));
        Count();
        return hashes;
    }

    private async Task FlushPendingAsync(CancellationToken cancellationToken)
    {
        foreach (var (tile, bytes) in _pendingUpper)
        {
            await WriteAsync(tile, bytes, cancellationToken).ConfigureAwait(false);
        }

        _pendingUpper.Clear();
    }

    private async Task<bool> LoadBundleAsync(TileAddress bundle, Hash[] leaves, CancellationToken cancellationToken)
    {
        var path = PathOf(bundle);
        if (File.Exists(path))
        {
            if (BundleMatches(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false), leaves))
            {
                _reused++;
                Count();
                return true;
            }

            _replaced++;
            File.Delete(path);
        }

        var bytes = await source.TileAsync(bundle, cancellationToken).ConfigureAwait(false);
        _downloaded++;
        if (!BundleMatches(bytes, leaves))
        {
            return false;
        }

        await WriteAsync(bundle, bytes, cancellationToken).ConfigureAwait(false);
        Count();
        return true;
    }

    /// <summary>tlog-tiles entry bundle: big-endian uint16 length + entry, one per leaf hash, nothing after.</summary>
    private static bool BundleMatches(byte[] bundle, Hash[] leaves)
    {
        var offset = 0;
        foreach (var leaf in leaves)
        {
            if (bundle.Length - offset < 2)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(bundle.AsSpan(offset));
            if (bundle.Length - offset - 2 < length || MerkleHasher.HashLeaf(bundle.AsSpan(offset + 2, length)) != leaf)
            {
                return false;
            }

            offset += 2 + length;
        }

        return offset == bundle.Length;
    }

    private static Hash[]? ParseHashes(byte[] bytes, int width)
    {
        if (bytes.Length != width * Hash.Size)
        {
            return null;
        }

        var hashes = new Hash[width];
        for (var i = 0; i < width; i++)
        {
            hashes[i] = new Hash(bytes.AsSpan(i * Hash.Size, Hash.Size));
        }

        return hashes;
    }

    private Task WriteAsync(TileAddress tile, byte[] bytes, CancellationToken cancellationToken) => WriteFileAsync(tile.Path, bytes, cancellationToken);

    /// <summary>Written to a temporary name and renamed, so an interrupted run leaves whole files or none.</summary>
    private async Task WriteFileAsync(string relative, byte[] bytes, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        await File.WriteAllBytesAsync(temporary, bytes, cancellationToken).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
    }

    private string PathOf(TileAddress tile) => Path.Combine(directory, tile.Path);

    private void Count()
    {
        _done++;
        _progress?.Report(new MirrorProgress(Math.Min(_done, _total), _total));
    }

    private MirrorResult Fail(string reason) => new(null, _downloaded, _reused, _replaced, reason);

    /// <summary>Reads the checkpoint a previous run kept (verified then); null when this is the first run.</summary>
    public static Checkpoint? ReadPrevious(string directory)
    {
        var path = Path.Combine(directory, CheckpointFile);
        if (!File.Exists(path))
        {
            return null;
        }

        var text = Encoding.UTF8.GetString(File.ReadAllBytes(path));
        if (!SignedNote.TryParse(text, out var note, out var error) || !Checkpoint.TryParse(note.Text, out var checkpoint, out error))
        {
            throw new CliInputException($"'{path}' is not a checkpoint ({error}); it was not written by atp mirror");
        }

        return checkpoint;
    }
}
