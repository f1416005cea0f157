using System.Text;
using Atp.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>Where the cell's checkpoint signing keys come from; a seam for HSM- or KMS-backed providers.</summary>
public interface ISigningKeyProvider
{
    /// <summary>
    /// The primary key: it signs what carries one signature only (export bundle manifests). During a rotation it is the
    /// old key, which every verifier already trusts.
    /// </summary>
    NoteSigner Current { get; }

    /// <summary>
    /// Every key whose signatures the cell's stored checkpoints may carry: the signing keys and the retired ones, so a
    /// checkpoint signed before a rotation still verifies.
    /// </summary>
    IReadOnlyList<NoteVerifier> Verifiers { get; }

    /// <summary>Every key that signs a new checkpoint, <see cref="Current"/> first; two during a rotation's overlap.</summary>
    IReadOnlyList<NoteSigner> Signers => [Current];

    /// <summary>Every key with its status and validity, as <c>GET /v1/log/keys</c> publishes them.</summary>
    IReadOnlyList<SigningKeyInfo> Keys =>
        [.. Verifiers.Select(v => new SigningKeyInfo(v, v.KeyId == Current.KeyId ? SigningKeyStatus.Active : SigningKeyStatus.Retiring, null, null, null))];
}

/// <summary>A provider whose keys an operator can rotate while the cell runs (the file-based default is one).</summary>
public interface IRotatingSigningKeyProvider : ISigningKeyProvider
{
    /// <summary>
    /// Starts a rotation: a new key (status next) signs alongside the active one, which turns retiring and, when
    /// <paramref name="overlap"/> is given, retires by itself once the overlap has passed.
    /// </summary>
    /// <exception cref="SigningKeyStateException">A rotation is already under way.</exception>
    SigningKeyInfo Rotate(DateTimeOffset now, TimeSpan? overlap);

    /// <summary>Retires the retiring key now: it stops signing, the next key becomes active.</summary>
    /// <exception cref="SigningKeyStateException">No key has that id, or it is not the retiring key.</exception>
    SigningKeyInfo Retire(uint keyId, DateTimeOffset now);

    /// <summary>Retires the retiring key when its overlap has ended; re-reads key state another node changed.</summary>
    SigningKeyInfo? RetireDue(DateTimeOffset now);
}

/// <summary>Where a key is in its life.</summary>
public enum SigningKeyStatus
{
    /// <summary>Signs every new checkpoint; the only signing key outside a rotation.</summary>
    Active,

    /// <summary>The new key of a rotation: signs alongside the retiring key, becomes active when that retires.</summary>
    Next,

    /// <summary>The old key of a rotation: still signs (and stays primary) until it retires.</summary>
    Retiring,

    /// <summary>Signs nothing any more; published so checkpoints it signed still verify.</summary>
    Retired,
}

/// <summary>A signing key's public half, status and validity (no secret).</summary>
public sealed record SigningKeyInfo(NoteVerifier Verifier, SigningKeyStatus Status, DateTimeOffset? NotBefore, DateTimeOffset? NotAfter, DateTimeOffset? RetiredAt)
{
    /// <summary>The key id as published on verifier keys: 8 lowercase hex digits. Public, not a secret.</summary>
    public string KeyIdHex => Verifier.KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Whether the key signs new checkpoints (every status but retired).</summary>
    public bool Signs => Status is not SigningKeyStatus.Retired;
}

/// <summary>A rotation step that the keys' current state does not allow (a 409 to the caller).</summary>
public sealed class SigningKeyStateException(string slug, string message) : InvalidOperationException(message)
{
    /// <summary>The problem type's name (<c>https://atp.dev/problems/{Slug}</c>).</summary>
    public string Slug { get; } = slug;
}

/// <summary>
/// The default key provider: Ed25519 keys in <c>{DataDirectory}/keys</c>, created with owner-only permissions and named
/// after <c>Atp:Origin</c>. The first key is <c>cell-signing.key</c>; a rotation adds <c>cell-signing-{keyid}.key</c> and
/// records every key's status in <c>cell-signing.keyring.json</c> (see <see cref="SigningKeyring"/>). Without a keyring the
/// one key file is the active key, as before rotation existed.
/// </summary>
internal sealed partial class FileSigningKeyProvider : IRotatingSigningKeyProvider, IDisposable
{
    private const string FirstKeyFile = "cell-signing.key";

    private readonly string _directory;
    private readonly string _name;
    private readonly ILogger<FileSigningKeyProvider> _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<uint, NoteSigner> _loaded = [];
    private volatile State _state;
    private (DateTime Written, long Length)? _keyringStamp;

    public FileSigningKeyProvider(IOptions<AtpOptions> options, ILogger<FileSigningKeyProvider> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger;
        _name = options.Value.Origin;
        _directory = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "keys");
        Directory.CreateDirectory(_directory);
        var path = Path.Combine(_directory, FirstKeyFile);
        if (!File.Exists(path))
        {
            using var created = NoteSigner.Generate(_name);
            OwnerOnlyFile.Write(path, created.ExportSignerKey() + "\n");
            LogKeyCreated(logger, path, created.Verifier.VerifierKey);
        }

        _state = Load();
    }

    public NoteSigner Current => _state.Current;

    public IReadOnlyList<NoteVerifier> Verifiers => _state.Verifiers;

    public IReadOnlyList<NoteSigner> Signers => _state.Signers;

    public IReadOnlyList<SigningKeyInfo> Keys => _state.Keys;

    public SigningKeyInfo Rotate(DateTimeOffset now, TimeSpan? overlap)
    {
        lock (_lock)
        {
            RefreshLocked();
            var keys = _state.Keys;
            if (keys.Any(k => k.Status is SigningKeyStatus.Next or SigningKeyStatus.Retiring))
            {
                throw new SigningKeyStateException("rotation-in-progress", "A key rotation is already under way; retire the retiring key before starting another.");
            }

            using var signer = NoteSigner.Generate(_name);
            var file = $"cell-signing-{signer.KeyId:x8}.key";

            // The key file exists (owner-only, fsynced) before the keyring names it: a crash in between leaves an unused
            // key file, never a keyring naming a missing key.
            OwnerOnlyFile.Write(Path.Combine(_directory, file), signer.ExportSignerKey() + "\n");
            var next = new SigningKeyInfo(signer.Verifier, SigningKeyStatus.Next, now, null, null);
            var updated = keys.Select(k => k.Status == SigningKeyStatus.Active ? k with { Status = SigningKeyStatus.Retiring, NotAfter = now + overlap } : k).Append(next).ToList();
            Save(updated, file);
            LogRotationStarted(_logger, next.Verifier.VerifierKey);
            return next;
        }
    }

    public SigningKeyInfo Retire(uint keyId, DateTimeOffset now)
    {
        lock (_lock)
        {
            RefreshLocked();
            var key = _state.Keys.FirstOrDefault(k => k.Verifier.KeyId == keyId)
                ?? throw new SigningKeyStateException("not-found", $"This cell has no signing key with id {keyId:x8}.");
            if (key.Status != SigningKeyStatus.Retiring)
            {
                throw new SigningKeyStateException("key-not-retiring", $"Key {keyId:x8} is {SigningKeyring.StatusName(key.Status)}; only the retiring key of a rotation can be retired.");
            }

            return RetireLocked(key, now);
        }
    }

    public SigningKeyInfo? RetireDue(DateTimeOffset now)
    {
        lock (_lock)
        {
            RefreshLocked();
            return _state.Keys.FirstOrDefault(k => k.Status == SigningKeyStatus.Retiring && k.NotAfter is { } end && end <= now) is { } due ? RetireLocked(due, now) : null;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var signer in _loaded.Values)
            {
                signer.Dispose();
            }

            _loaded.Clear();
        }
    }

    private SigningKeyInfo RetireLocked(SigningKeyInfo key, DateTimeOffset now)
    {
        var retired = key with { Status = SigningKeyStatus.Retired, RetiredAt = now };
        Save([.. _state.Keys.Select(k => k.Verifier.KeyId == key.Verifier.KeyId ? retired : k.Status == SigningKeyStatus.Next ? k with { Status = SigningKeyStatus.Active } : k)], null);
        LogKeyRetired(_logger, key.Verifier.VerifierKey);
        return retired;
    }

    // Another node sharing the data directory may have rotated or retired: a changed keyring is read again.
    private void RefreshLocked()
    {
        if (Stamp() != _keyringStamp)
        {
            _state = Load();
        }
    }

    private (DateTime, long)? Stamp()
    {
        var info = new FileInfo(SigningKeyring.PathOf(_directory));
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : null;
    }

    private void Save(IReadOnlyList<SigningKeyInfo> keys, string? newFile)
    {
        var files = _state.Files.ToDictionary();
        if (newFile is not null)
        {
            files[keys[^1].Verifier.KeyId] = newFile;
        }

        SigningKeyring.Write(_directory, [.. keys.Select(k => new SigningKeyring.Entry(files[k.Verifier.KeyId], k))]);
        _state = Load();
    }

    private State Load()
    {
        var stamp = Stamp();
        IReadOnlyList<SigningKeyring.Entry> entries;
        if (SigningKeyring.Read(_directory) is { } keyring)
        {
            entries = keyring;
        }
        else
        {
            // No rotation yet: the one key file is the active key; its file time is when it was created.
            var path = Path.Combine(_directory, FirstKeyFile);
            var signer = Open(FirstKeyFile, expected: null);
            entries = [new SigningKeyring.Entry(FirstKeyFile, new SigningKeyInfo(signer.Verifier, SigningKeyStatus.Active, new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero), null, null))];
        }

        var signers = new List<NoteSigner>();
        foreach (var entry in entries.Where(e => e.Key.Signs).OrderBy(e => e.Key.Status == SigningKeyStatus.Next))
        {
            signers.Add(Open(entry.File, entry.Key.Verifier));
        }

        if (signers.Count == 0)
        {
            throw new InvalidOperationException($"The keyring {SigningKeyring.PathOf(_directory)} has no signing key (active, next or retiring).");
        }

        _keyringStamp = stamp;
        return new State(
            signers[0],
            [.. signers],
            [.. entries.Select(e => e.Key.Verifier)],
            [.. entries.Select(e => e.Key)],
            entries.ToDictionary(e => e.Key.Verifier.KeyId, e => e.File));
    }

    // Signers stay loaded for the provider's life: a signer handed to the sealer must not be disposed under it.
    private NoteSigner Open(string file, NoteVerifier? expected)
    {
        if (expected is not null && _loaded.TryGetValue(expected.KeyId, out var known))
        {
            return known;
        }

        var path = Path.Combine(_directory, file);
        NoteSigner signer;
        try
        {
            signer = NoteSigner.Parse(File.ReadAllText(path, Encoding.UTF8));
        }
        catch (FormatException e)
        {
            // The parser's message never holds key material.
            throw new InvalidOperationException($"The signing key file {path} is not a signer key: {e.Message}", e);
        }

        if (expected is not null && signer.Verifier.VerifierKey != expected.VerifierKey)
        {
            signer.Dispose();
            throw new InvalidOperationException($"The signing key file {path} does not hold the key the keyring names ({expected.VerifierKey}).");
        }

        if (_loaded.TryGetValue(signer.KeyId, out var same))
        {
            signer.Dispose();
            return same;
        }

        _loaded[signer.KeyId] = signer;
        return signer;
    }

    private sealed record State(
        NoteSigner Current, IReadOnlyList<NoteSigner> Signers, IReadOnlyList<NoteVerifier> Verifiers, IReadOnlyList<SigningKeyInfo> Keys, IReadOnlyDictionary<uint, string> Files);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created the cell signing key at {Path}; verifier key {VerifierKey}")]
    private static partial void LogKeyCreated(ILogger logger, string path, string verifierKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Signing key rotation started: new key {VerifierKey} signs alongside the old key until it retires")]
    private static partial void LogRotationStarted(ILogger logger, string verifierKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Signing key {VerifierKey} retired: it signs nothing more")]
    private static partial void LogKeyRetired(ILogger logger, string verifierKey);
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
