using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Atp.Integrity;

/// <summary>
/// A C2SP tlog-checkpoint: the body of a signed note naming a log (origin), its size and its root hash, optionally
/// followed by extension lines that are preserved verbatim.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>Creates a checkpoint body.</summary>
    public Checkpoint(string origin, ulong size, Hash root, IReadOnlyList<string>? extensions = null)
    {
        if (string.IsNullOrEmpty(origin) || !IsValidLine(origin))
        {
            throw new ArgumentException("A checkpoint origin must be a non-empty line.", nameof(origin));
        }

        extensions ??= [];
        foreach (var line in extensions)
        {
            if (string.IsNullOrEmpty(line) || !IsValidLine(line))
            {
                throw new ArgumentException("Checkpoint extension lines must be non-empty single lines.", nameof(extensions));
            }
        }

        Origin = origin;
        Size = size;
        Root = root;
        Extensions = extensions;
    }

    /// <summary>Unique name of the log (for ATP: host/cell/tenant).</summary>
    public string Origin { get; }

    /// <summary>Number of leaves in the tree.</summary>
    public ulong Size { get; }

    /// <summary>Root hash of the tree of <see cref="Size"/> leaves.</summary>
    public Hash Root { get; }

    /// <summary>Extension lines after the root, in order.</summary>
    public IReadOnlyList<string> Extensions { get; }

    /// <summary>The note text: origin, size, base64 root and extension lines, each ending in a newline.</summary>
    public string ToNoteText()
    {
        var builder = new StringBuilder();
        builder.Append(Origin).Append('\n')
            .Append(Size.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append(Root.ToBase64()).Append('\n');
        foreach (var line in Extensions)
        {
            builder.Append(line).Append('\n');
        }

        return builder.ToString();
    }

    /// <summary>Signs this checkpoint with one or more keys (several during a key-rotation overlap).</summary>
    public SignedNote Sign(params ReadOnlySpan<NoteSigner> signers) => SignedNote.Sign(ToNoteText(), signers);

    /// <summary>Parses checkpoint note text (not the signatures; see <see cref="Open"/>).</summary>
    public static bool TryParse(string noteText, [NotNullWhen(true)] out Checkpoint? checkpoint, out string error)
    {
        ArgumentNullException.ThrowIfNull(noteText);
        checkpoint = null;
        if (!SignedNote.IsValidText(noteText, out error))
        {
            return false;
        }

        var lines = noteText[..^1].Split('\n');
        if (lines.Length < 3)
        {
            error = "a checkpoint has at least three lines: origin, tree size, root hash";
            return false;
        }

        if (lines[0].Length == 0)
        {
            error = "the checkpoint origin is empty";
            return false;
        }

        if (!TryParseSize(lines[1], out var size))
        {
            error = "the checkpoint tree size is not a decimal number without leading zeros";
            return false;
        }

        if (!Hash.TryParseBase64(lines[2], out var root))
        {
            error = "the checkpoint root is not standard base64 of 32 bytes";
            return false;
        }

        for (var i = 3; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                error = "a checkpoint extension line is empty";
                return false;
            }
        }

        checkpoint = new Checkpoint(lines[0], size, root, lines[3..]);
        return true;
    }

    /// <summary>
    /// Parses a signed checkpoint and verifies its signatures against <paramref name="trusted"/>. The checkpoint is
    /// returned only when the note verifies: unverified text must not be acted on (C2SP signed-note).
    /// </summary>
    public static VerifyResult Open(ReadOnlySpan<byte> signedNote, IEnumerable<NoteVerifier> trusted, out Checkpoint? checkpoint)
    {
        checkpoint = null;
        if (!SignedNote.TryParse(signedNote, out var note, out var error))
        {
            return VerifyResult.Fail($"not a signed note: {error}");
        }

        var verified = note.Verify(trusted, out _);
        if (!verified.IsValid)
        {
            return verified;
        }

        if (!TryParse(note.Text, out checkpoint, out error))
        {
            return VerifyResult.Fail($"the note is signed but is not a checkpoint: {error}");
        }

        return VerifyResult.Success;
    }

    private static bool TryParseSize(string text, out ulong size)
    {
        size = 0;
        if (text.Length == 0 || (text.Length > 1 && text[0] == '0'))
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out size);
    }

    private static bool IsValidLine(string line) => !line.Contains('\n', StringComparison.Ordinal) && SignedNote.IsValidText(line + "\n", out _);
}
