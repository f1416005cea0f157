using System.Buffers;

namespace Atp.Core.Export;

/// <summary>
/// Reads newline-terminated lines from a stream in bounded memory (one line of at most the limit, plus a read buffer),
/// handing every byte read to <see cref="BytesRead"/> first so a caller can hash the whole file in the same pass.
/// (Entries files of bundles are checked by <see cref="EntriesFileCheck"/>, which spreads the hashing over the cores.)
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

    public NdjsonLineReader(Stream stream, int maxLineBytes)
    {
        _stream = stream;
        _maxLineBytes = maxLineBytes;
        _buffer = ArrayPool<byte>.Shared.Rent(ReadSize * 2);
    }

    /// <summary>Called with every chunk read from the stream, in order.</summary>
    public Action<ReadOnlyMemory<byte>>? BytesRead { get; init; }

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
                return scanned == 0 ? (LineStatus.End, default) : (LineStatus.Unterminated, default);
            }

            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        return ValueTask.CompletedTask;
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
        BytesRead?.Invoke(chunk);

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
