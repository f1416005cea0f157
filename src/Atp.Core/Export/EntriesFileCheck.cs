using System.Buffers;
using System.Security.Cryptography;
using System.Numerics;
using Atp.Integrity;

namespace Atp.Core.Export;

/// <summary>
/// Checks one entries file of a bundle on every core: the stream is read in 1 MiB batches of whole lines; each batch's
/// leaf hashes are computed (and compared with the listed ones) on the thread pool, the file's SHA-256 runs on its own
/// thread over the same buffers (no copy), and this thread only splits lines and, in order, folds the tree. Memory stays
/// bounded: at most <see cref="InFlight"/> batches wait for their leaf hashes and as many for the file hash. Failures are
/// reported exactly as a line-by-line reading would: the first failing line in file order, then the file's SHA-256.
/// </summary>
internal static class EntriesFileCheck
{
    private const int ReadBytes = 1 << 20;
    private const int InFlight = 4;

    /// <summary>
    /// Verifies <paramref name="file"/>. With <paramref name="listed"/> (a complete bundle's hashes file) every leaf hash
    /// must equal its listed one and is appended to <paramref name="range"/>; otherwise the leaf hashes are added to
    /// <paramref name="leafHashes"/> (a filtered bundle's, for the proofs).
    /// </summary>
    public static async Task<BundleFailure?> VerifyAsync(
        BundleFile file, Stream data, CompactRange? range, byte[]? listed, string? listedName, List<Hash>? leafHashes, CancellationToken cancellationToken)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        // The file's SHA-256 runs on the thread pool too, one chunk after the other (each continues the previous one), so
        // the pool's threads share it with the leaf hashes instead of a dedicated thread competing with them for cores.
        var fileHashing = new Queue<Task>(InFlight * 2);
        var lastFileHash = Task.CompletedTask;
        var pending = new Queue<Batch>(InFlight);
        var maxLine = BundleManifest.MaxLineBytes;
        var lines = 0L;
        BundleFailure? failure = null;
        var carry = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(maxLine + ReadBytes);
        try
        {
            BundleFailure? stop = null;
            while (stop is null)
            {
                var read = await data.ReadAtLeastAsync(buffer.AsMemory(carry, ReadBytes), ReadBytes, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    if (carry > 0)
                    {
                        stop = new BundleFailure(file.Name, "the last line does not end with a newline", IndexIfComplete(range, file, lines), lines + 1);
                    }

                    break;
                }

                var end = carry + read;
                var batch = new Batch(buffer, carry, end, lines);
                var start = 0;
                while (true)
                {
                    var newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
                    if (newline < 0)
                    {
                        break;
                    }

                    if (newline > maxLine)
                    {
                        stop = new BundleFailure(file.Name, $"the line is longer than {maxLine} bytes", IndexIfComplete(range, file, lines), lines + 1);
                        break;
                    }

                    if ((ulong)lines >= file.Count)
                    {
                        stop = new BundleFailure(file.Name, $"holds more than the {file.Count} entries the manifest lists", IndexIfComplete(range, file, lines), lines + 1);
                        break;
                    }

                    batch.Add(start, newline);
                    start += newline + 1;
                    lines++;
                }

                carry = end - start;
                if (stop is null && carry > maxLine)
                {
                    stop = new BundleFailure(file.Name, $"the line is longer than {maxLine} bytes", IndexIfComplete(range, file, lines), lines + 1);
                }

                // The unfinished line moves to the next batch's buffer; this one now belongs to the batch.
                buffer = ArrayPool<byte>.Shared.Rent(maxLine + ReadBytes);
                if (stop is null)
                {
                    batch.Buffer.AsSpan(start, carry).CopyTo(buffer);
                }

                batch.StartLeafHashes(listed, range is not null ? file.FirstIndex + (ulong)batch.FirstLine : null);
                pending.Enqueue(batch);
                lastFileHash = lastFileHash.ContinueWith(
                    static (_, state) =>
                    {
                        var (hash, hashed) = ((IncrementalHash, Batch))state!;
                        hash.AppendData(hashed.Buffer.AsSpan(hashed.NewBytesStart, hashed.End - hashed.NewBytesStart));
                        hashed.Release();
                    },
                    (sha256, batch),
                    CancellationToken.None,
                    TaskContinuationOptions.None,
                    TaskScheduler.Default);
                fileHashing.Enqueue(lastFileHash);
                while (fileHashing.Count > InFlight * 2)
                {
                    await fileHashing.Dequeue().ConfigureAwait(false);
                }

                while (pending.Count >= InFlight)
                {
                    if ((failure = await FoldAsync(pending.Dequeue(), file, range, listed, listedName, leafHashes).ConfigureAwait(false)) is not null)
                    {
                        return failure;
                    }
                }
            }

            while (pending.Count > 0)
            {
                if ((failure = await FoldAsync(pending.Dequeue(), file, range, listed, listedName, leafHashes).ConfigureAwait(false)) is not null)
                {
                    return failure;
                }
            }

            if (stop is not null)
            {
                return stop;
            }

            if ((ulong)lines != file.Count)
            {
                return failure = new BundleFailure(file.Name, $"holds {lines} entries, the manifest lists {file.Count}");
            }
        }
        finally
        {
            // Every buffer must be out of use before the pool gets it back.
            await lastFileHash.ConfigureAwait(false);
            while (pending.TryDequeue(out var batch))
            {
                await batch.LeafHashing.ConfigureAwait(false);
                batch.Release();
            }

            ArrayPool<byte>.Shared.Return(buffer);
        }

        var digest = Convert.ToHexStringLower(sha256.GetHashAndReset());
        return digest == file.Sha256 ? null : new BundleFailure(file.Name, $"SHA-256 {digest} is not the manifest's {file.Sha256}");
    }

    // The batches are folded in file order, so the first failing line is the one reported.
    private static async Task<BundleFailure?> FoldAsync(Batch batch, BundleFile file, CompactRange? range, byte[]? listed, string? listedName, List<Hash>? leafHashes)
    {
        try
        {
            await batch.LeafHashing.ConfigureAwait(false);
            if (batch.Mismatch >= 0)
            {
                var line = batch.FirstLine + batch.Mismatch;
                var expected = listed.AsSpan((int)line * BundleManifest.LeafHashBytes, BundleManifest.LeafHashBytes);
                return new BundleFailure(
                    file.Name,
                    $"leaf hash {batch.MismatchHash.ToHex()} is not the listed {Convert.ToHexStringLower(expected)} ({listedName})",
                    file.FirstIndex + (ulong)line,
                    line + 1);
            }

            if (range is not null)
            {
                // Every leaf hash equals its listed one here; the batch folded its aligned blocks of leaves itself.
                foreach (var (level, root) in batch.Subtrees)
                {
                    range.AppendSubtree(level, root);
                }
            }
            else
            {
                leafHashes?.AddRange(batch.Hashes.AsSpan(0, batch.Count));
            }

            return null;
        }
        finally
        {
            batch.Release();
        }
    }

    // A filtered entries file's lines are not consecutive indexes: only the proofs file says which index a line has.
    private static ulong? IndexIfComplete(CompactRange? range, BundleFile file, long line) => range is null ? null : file.FirstIndex + (ulong)line;

    /// <summary>Whole lines of one read: the buffer is shared by the file hash and the leaf hashes, returned when both are done.</summary>
    private sealed class Batch(byte[] buffer, int newBytesStart, int end, long firstLine)
    {
        private int[] _starts = ArrayPool<int>.Shared.Rent(8192);
        private int[] _lengths = ArrayPool<int>.Shared.Rent(8192);
        private int _users = 2;

        public byte[] Buffer { get; } = buffer;

        /// <summary>Where the bytes read for this batch begin (before them: the previous batch's unfinished line).</summary>
        public int NewBytesStart { get; } = newBytesStart;

        public int End { get; } = end;

        public long FirstLine { get; } = firstLine;

        public int Count { get; private set; }

        public Task LeafHashing { get; private set; } = Task.CompletedTask;

        /// <summary>The first line (within the batch) whose leaf hash is not the listed one, or -1.</summary>
        public int Mismatch { get; private set; } = -1;

        public Hash MismatchHash { get; private set; }

        /// <summary>The leaf hashes (valid for <see cref="Count"/> entries when there are no subtrees).</summary>
        public Hash[] Hashes { get; private set; } = [];

        /// <summary>The batch's leaves as aligned perfect subtrees (level, root), in order, when it was given its index.</summary>
        public List<(int Level, Hash Root)> Subtrees { get; } = [];

        public void Add(int start, int length)
        {
            if (Count == _starts.Length)
            {
                _starts = Grow(_starts, Count);
                _lengths = Grow(_lengths, Count);
            }

            _starts[Count] = start;
            _lengths[Count] = length;
            Count++;
        }

        /// <summary>
        /// Hashes the leaves on the thread pool; with <paramref name="firstIndex"/> (a complete bundle, whose lines are
        /// consecutive indexes) it also reduces them to the largest aligned perfect subtrees, so the interior nodes are
        /// hashed in parallel too and the ordered fold only appends a few roots per batch.
        /// </summary>
        public void StartLeafHashes(byte[]? listed, ulong? firstIndex) => LeafHashing = Task.Run(() => HashLeaves(listed, firstIndex));

        public void Release()
        {
            if (Interlocked.Decrement(ref _users) == 0)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
                ArrayPool<int>.Shared.Return(_starts);
                ArrayPool<int>.Shared.Return(_lengths);
                if (Hashes.Length > 0)
                {
                    ArrayPool<Hash>.Shared.Return(Hashes);
                }
            }
        }

        private void HashLeaves(byte[]? listed, ulong? firstIndex)
        {
            var hashes = Hashes = ArrayPool<Hash>.Shared.Rent(Math.Max(Count, 1));
            for (var i = 0; i < Count; i++)
            {
                var leafHash = MerkleHasher.HashLeaf(Buffer.AsSpan(_starts[i], _lengths[i]));
                if (listed is not null && !leafHash.AsSpan().SequenceEqual(listed.AsSpan((int)(FirstLine + i) * BundleManifest.LeafHashBytes, BundleManifest.LeafHashBytes)))
                {
                    MismatchHash = leafHash;
                    Mismatch = i;
                    return;
                }

                hashes[i] = leafHash;
            }

            if (firstIndex is not { } index)
            {
                return;
            }

            var done = 0;
            while (done < Count)
            {
                var level = Math.Min(index == 0 ? 62 : BitOperations.TrailingZeroCount(index), BitOperations.Log2((uint)(Count - done)));
                var width = 1 << level;
                Subtrees.Add((level, CompactRange.PerfectRoot(hashes.AsSpan(done, width))));
                done += width;
                index += (ulong)width;
            }
        }

        private static int[] Grow(int[] array, int count)
        {
            var bigger = ArrayPool<int>.Shared.Rent(array.Length * 2);
            array.AsSpan(0, count).CopyTo(bigger);
            ArrayPool<int>.Shared.Return(array);
            return bigger;
        }
    }
}
