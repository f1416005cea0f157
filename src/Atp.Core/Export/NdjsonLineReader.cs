using System.Buffers;
using System.Threading.Channels;

namespace Atp.Core.Export;

/// <summary>
/// Reads newline-terminated lines from a stream in bounded memory (one line of at most the limit, plus a read buffer),
/// handing every byte read to <see cref="BytesRead"/> first so a caller can hash the whole file in the same pass.
/// With <see cref="ParallelBytesRead"/> it runs on another thread, fed copies of the chunks through a bounded queue, so
/// hashing the file and hashing its lines take one core each and the reader never waits for a thread to wake up
/// (waiting for the hash of each chunk before reusing the buffer cost more than the hash on a loaded machine).
/// </summary>
internal sealed class NdjsonLineReader : IAsyncDisposable
{
    private const int ReadSize = 1 << 18;
    private readonly Stream _stream;
    private readonly int _maxLineBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;
    private Channel<(byte[] Chunk, int Length)>? _queue;
    private Task? _consumer;

    public NdjsonLineReader(Stream stream, int maxLineBytes)
    {
        _stream = stream;
        _maxLineBytes = maxLineBytes;
        _buffer = ArrayPool<byte>.Shared.Rent(ReadSize * 2);
    }

    /// <summary>Called with every chunk read from the stream, in order.</summary>
    public Action<ReadOnlyMemory<byte>>? BytesRead { get; init; }

    /// <summary>Run <see cref="BytesRead"/> on the thread pool, overlapping with the caller's work on the lines.</summary>
    public bool ParallelBytesRead { get; init; }

    /// <summary>Total bytes read from the stream.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// The next line without its <c>\n</c> (valid until the next call), or the reason there is none:
    /// <see cref="LineStatus.End"/> after the last terminated line.
    /// </summary>
    public async ValueTask<(LineStatus Status, ReadOnlyMemory<byte> Line)> ReadLineAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var newline = _buffer.AsSpan(_start + scanned, _end - _start - scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = new ReadOnlyMemory<byte>(_buffer, _start, scanned + newline);
                _start += scanned + newline + 1;
                return line.Length > _maxLineBytes ? (LineStatus.TooLong, default) : (LineStatus.Line, line);
            }

            scanned = _end - _start;
            if (scanned > _maxLineBytes)
            {
                return (LineStatus.TooLong, default);
            }

            if (_eof)
            {
                await WaitForBytesReadAsync().ConfigureAwait(false);
                return scanned == 0 ? (LineStatus.End, default) : (LineStatus.Unterminated, default);
            }

            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The pool must not hand the buffer out while a hash of it still runs.
        await WaitForBytesReadAsync().ConfigureAwait(false);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    // Ends the queue and waits until every chunk read has been handed to BytesRead.
    private async ValueTask WaitForBytesReadAsync()
    {
        if (_consumer is { } consumer)
        {
            _queue!.Writer.TryComplete();
            _consumer = null;
            await consumer.ConfigureAwait(false);
        }
    }

    private async ValueTask QueueAsync(ReadOnlyMemory<byte> chunk, Action<ReadOnlyMemory<byte>> bytesRead, CancellationToken cancellationToken)
    {
        if (_queue is null)
        {
            _queue = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(8) { SingleReader = true, SingleWriter = true });
            var reader = _queue.Reader;
            _consumer = Task.Run(
                async () =>
                {
                    await foreach (var (copy, length) in reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
                    {
                        bytesRead(new ReadOnlyMemory<byte>(copy, 0, length));
                        ArrayPool<byte>.Shared.Return(copy);
                    }
                },
                CancellationToken.None);
        }

        var copied = ArrayPool<byte>.Shared.Rent(chunk.Length);
        chunk.CopyTo(copied);
        await _queue.Writer.WriteAsync((copied, chunk.Length), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask FillAsync(CancellationToken cancellationToken)
    {
        // Keep the unfinished line: move it to the front, growing the buffer only when a line is longer than it.
        var pending = _end - _start;
        if (_buffer.Length - pending < ReadSize)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, pending + ReadSize));
            _buffer.AsSpan(_start, pending).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        else if (_start > 0)
        {
            _buffer.AsSpan(_start, pending).CopyTo(_buffer);
        }

        _start = 0;
        _end = pending;
        var read = await _stream.ReadAsync(_buffer.AsMemory(_end, _buffer.Length - _end), cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            _eof = true;
            return;
        }

        var chunk = new ReadOnlyMemory<byte>(_buffer, _end, read);
        if (BytesRead is { } bytesRead)
        {
            if (ParallelBytesRead)
            {
                await QueueAsync(chunk, bytesRead, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                bytesRead(chunk);
            }
        }

        _end += read;
        Position += read;
    }
}

/// <summary>What <see cref="NdjsonLineReader.ReadLineAsync"/> found.</summary>
internal enum LineStatus
{
    Line,
    End,

    /// <summary>The stream ends inside a line (its last byte is not <c>\n</c>).</summary>
    Unterminated,
    TooLong,
}
