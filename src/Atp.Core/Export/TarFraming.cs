using System.Text;

namespace Atp.Core.Export;

/// <summary>
/// Checks the tar framing that System.Formats.Tar reads without checking, so that no byte of a bundle goes unchecked:
/// every 512-byte header's checksum (POSIX ustar: the sum of the header bytes with the checksum field read as spaces;
/// it covers every header byte, the fields a reader ignores included), the zero padding after each member's data, and
/// the end of the archive (zero blocks, at least two, up to the end of the file). Reads only headers and padding.
/// </summary>
internal static class TarFraming
{
    private const int Block = 512;

    public static async Task<BundleFailure?> CheckAsync(Stream tar, CancellationToken cancellationToken)
    {
        var header = new byte[Block];
        var padding = new byte[Block];
        long offset = 0;
        var length = tar.Length;
        while (true)
        {
            if (offset + Block > length)
            {
                return new BundleFailure("tar", $"the file ends inside a header block at byte {offset}");
            }

            tar.Position = offset;
            await tar.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
            if (!header.AsSpan().ContainsAnyExcept((byte)0))
            {
                return await CheckEndAsync(tar, offset, length, padding, cancellationToken).ConfigureAwait(false);
            }

            var name = Name(header);
            if (!TryOctal(header.AsSpan(148, 8), out var stored) || stored != Checksum(header))
            {
                return new BundleFailure(name, $"its tar header (byte {offset}) fails its checksum");
            }

            if (!TryOctal(header.AsSpan(124, 12), out var size))
            {
                return new BundleFailure(name, $"its tar header (byte {offset}) has an unreadable size");
            }

            var dataEnd = offset + Block + size;
            var next = offset + Block + ((size + Block - 1) / Block * Block);
            if (next > length)
            {
                return new BundleFailure(name, "the file ends inside its data");
            }

            var pad = (int)(next - dataEnd);
            tar.Position = dataEnd;
            await tar.ReadExactlyAsync(padding.AsMemory(0, pad), cancellationToken).ConfigureAwait(false);
            if (padding.AsSpan(0, pad).ContainsAnyExcept((byte)0))
            {
                return new BundleFailure(name, $"the tar padding after its data (bytes {dataEnd}..{next - 1}) is not zero");
            }

            offset = next;
        }
    }

    private static async Task<BundleFailure?> CheckEndAsync(Stream tar, long offset, long length, byte[] buffer, CancellationToken cancellationToken)
    {
        if (length - offset < 2 * Block)
        {
            return new BundleFailure("tar", $"the end-of-archive marker at byte {offset} is shorter than two zero blocks");
        }

        tar.Position = offset;
        for (var at = offset; at < length; at += Block)
        {
            var count = (int)Math.Min(Block, length - at);
            await tar.ReadExactlyAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            if (buffer.AsSpan(0, count).ContainsAnyExcept((byte)0))
            {
                return new BundleFailure("tar", $"bytes after the end-of-archive marker (byte {offset}) are not zero, near byte {at}");
            }
        }

        return null;
    }

    private static long Checksum(ReadOnlySpan<byte> header)
    {
        long sum = 0;
        for (var i = 0; i < Block; i++)
        {
            sum += i is >= 148 and < 156 ? (byte)' ' : header[i];
        }

        return sum;
    }

    // An octal field: digits, then only NUL or space terminators (leading spaces allowed, as some writers pad so).
    private static bool TryOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        var i = 0;
        while (i < field.Length && field[i] == (byte)' ')
        {
            i++;
        }

        var digits = 0;
        for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++, digits++)
        {
            if (value > (long.MaxValue >> 3))
            {
                return false;
            }

            value = (value << 3) | (long)(field[i] - '0');
        }

        for (; i < field.Length; i++)
        {
            if (field[i] is not (0 or (byte)' '))
            {
                return false;
            }
        }

        return digits > 0;
    }

    private static string Name(ReadOnlySpan<byte> header)
    {
        var name = header[..100];
        var end = name.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }
}
