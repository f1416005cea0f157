using System.Text.Json;

namespace Atp.Cli;

/// <summary>Reads user-named files, turning every I/O failure into one line that names the file.</summary>
internal static class InputFiles
{
    /// <summary>Largest input file read into memory (checkpoints and proofs are small; leaves are at most a few hundred KiB).</summary>
    public const long MaxBytes = 16L << 20;

    public static Task<byte[]> ReadAsync(FileInfo file, string what, CancellationToken cancellationToken) =>
        ReadAsync(file, what, MaxBytes, path => File.ReadAllBytesAsync(path, cancellationToken));

    /// <summary>
    /// Parses a JSON file of up to <paramref name="maxBytes"/>, streaming it from disk (no second copy of the text).
    /// Malformed JSON, or JSON the <paramref name="options"/> refuse, is unusable input naming the file.
    /// </summary>
    public static Task<JsonDocument> ReadJsonAsync(FileInfo file, string what, long maxBytes, JsonDocumentOptions options, CancellationToken cancellationToken) =>
        ReadAsync(file, what, maxBytes, async path =>
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using (stream.ConfigureAwait(false))
            {
                try
                {
                    return await JsonDocument.ParseAsync(stream, options, cancellationToken).ConfigureAwait(false);
                }
                catch (JsonException e)
                {
                    throw new CliInputException($"{what} file '{file.FullName}' is not valid JSON: {e.Message}");
                }
            }
        });

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

    private static async Task<T> ReadAsync<T>(FileInfo file, string what, long maxBytes, Func<string, Task<T>> read)
    {
        try
        {
            if (file.Exists && file.Length > maxBytes)
            {
                throw new CliInputException($"{what} file '{file.FullName}' is larger than {maxBytes >> 20} MiB");
            }

            return await read(file.FullName).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot read {what} file '{file.FullName}': {e.Message}");
        }
    }
}
