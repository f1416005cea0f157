using System.Text;
using Atp.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>Where the cell's checkpoint signing keys come from; a seam for HSM- or KMS-backed providers.</summary>
public interface ISigningKeyProvider
{
    /// <summary>The key that signs new checkpoints.</summary>
    NoteSigner Current { get; }

    /// <summary>Every key whose signatures verifiers should currently accept (the current one and, during a rotation, the previous one).</summary>
    IReadOnlyList<NoteVerifier> Verifiers { get; }
}

/// <summary>
/// The default key provider: an Ed25519 key in <c>{DataDirectory}/keys/cell-signing.key</c>, created on first start
/// with owner-only permissions, named after <c>Atp:Origin</c>.
/// </summary>
internal sealed partial class FileSigningKeyProvider : ISigningKeyProvider, IDisposable
{
    public FileSigningKeyProvider(IOptions<AtpOptions> options, ILogger<FileSigningKeyProvider> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys");
        var path = Path.Combine(directory, "cell-signing.key");
        Directory.CreateDirectory(directory);
        if (File.Exists(path))
        {
            Current = NoteSigner.Parse(File.ReadAllText(path, Encoding.UTF8));
        }
        else
        {
            Current = NoteSigner.Generate(options.Value.Origin);
            OwnerOnlyFile.Write(path, Current.ExportSignerKey() + "\n");
            LogKeyCreated(logger, path, Current.Verifier.VerifierKey);
        }

        Verifiers = [Current.Verifier];
    }

    public NoteSigner Current { get; }

    public IReadOnlyList<NoteVerifier> Verifiers { get; }

    public void Dispose() => Current.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Created the cell signing key at {Path}; verifier key {VerifierKey}")]
    private static partial void LogKeyCreated(ILogger logger, string path, string verifierKey);
}

/// <summary>Writes secrets into files that are owner-only from the moment they exist.</summary>
internal static class OwnerOnlyFile
{
    public static void Write(string path, string content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream, new UTF8Encoding(false));
        writer.Write(content);
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }
}
