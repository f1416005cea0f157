using System.CommandLine;
using System.Text;
using Atp.Integrity;

namespace Atp.Cli.Keys;

/// <summary><c>atp keygen</c>: a new Ed25519 note-signing key, written owner-only; prints the verifier key.</summary>
internal static class KeygenCommand
{
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Key name, e.g. atp.example.com/westeu-prod-1 (no spaces or '+')", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Directory to write the key files into (created if missing)", Required = true };
        var force = new Option<bool>("--force") { Description = "Overwrite existing key files" };
        var command = new Command("keygen", "Generate an Ed25519 signing key for checkpoints (C2SP signed-note format).") { name, output, force };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(name)!, parse.GetValue(output)!, parse.GetValue(force), parse.InvocationConfiguration.Output, cancellationToken));
        return command;
    }

    /// <summary>The file-name stem for a key name: names are URL-like, so path separators are replaced.</summary>
    public static string FileStem(string keyName)
    {
        var builder = new StringBuilder(keyName.Length);
        foreach (var c in keyName)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_');
        }

        return builder.ToString();
    }

    private static async Task<int> RunAsync(string keyName, DirectoryInfo directory, bool force, TextWriter output, CancellationToken cancellationToken)
    {
        NoteSigner signer;
        try
        {
            signer = NoteSigner.Generate(keyName);
        }
        catch (ArgumentException)
        {
            throw new CliInputException($"'{keyName}' is not a valid key name: it must be non-empty and contain no spaces or '+'");
        }

        using (signer)
        {
            var stem = FileStem(keyName);
            var keyFile = Path.Combine(directory.FullName, stem + ".key");
            var verifierFile = Path.Combine(directory.FullName, stem + ".pub");
            try
            {
                Directory.CreateDirectory(directory.FullName);
                var mode = force ? FileMode.Create : FileMode.CreateNew;
                var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    // Created owner-only: the key never exists on disk with wider permissions, not even briefly.
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                await using (var stream = new FileStream(keyFile, options))
                await using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
                {
                    await writer.WriteAsync(signer.ExportSignerKey() + "\n").ConfigureAwait(false);
                }

                if (!OperatingSystem.IsWindows() && force)
                {
                    File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                await File.WriteAllTextAsync(verifierFile, signer.Verifier.VerifierKey + "\n", cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e) when (File.Exists(keyFile) && !force)
            {
                throw new CliInputException($"'{keyFile}' already exists; use --force to replace it ({e.GetType().Name})");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliInputException($"cannot write key files to '{directory.FullName}': {e.Message}");
            }

            await output.WriteLineAsync($"signing key (secret, owner-only): {keyFile}").ConfigureAwait(false);
            await output.WriteLineAsync($"verifier key (public): {verifierFile}").ConfigureAwait(false);
            await output.WriteLineAsync(signer.Verifier.VerifierKey).ConfigureAwait(false);
            return ExitCodes.Success;
        }
    }
}
