namespace Atp.Cli;

/// <summary>Reads user-named files, turning every I/O failure into one line that names the file.</summary>
internal static class InputFiles
{
    /// <summary>Largest input file read into memory (checkpoints and proofs are small; leaves are at most a few hundred KiB).</summary>
    public const long MaxBytes = 16L << 20;

    public static async Task<byte[]> ReadAsync(FileInfo file, string what, CancellationToken cancellationToken)
    {
        try
        {
            if (file.Exists && file.Length > MaxBytes)
            {
                throw new CliInputException($"{what} file '{file.FullName}' is larger than {MaxBytes >> 20} MiB");
            }

            return await File.ReadAllBytesAsync(file.FullName, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot read {what} file '{file.FullName}': {e.Message}");
        }
    }

    /// <summary>Reads all of <paramref name="stream"/> (standard input), refusing more than <see cref="MaxBytes"/>.</summary>
    public static async Task<byte[]> ReadStreamAsync(Stream stream, string what, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > MaxBytes)
            {
                throw new CliInputException($"{what} is larger than {MaxBytes >> 20} MiB");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
