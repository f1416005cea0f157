using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Atp.Integrity;

/// <summary>
/// A C2SP signed note: text ending in a newline, a blank line, then one or more signature lines.
/// </summary>
public sealed class SignedNote
{
    /// <summary>
    /// Signatures accepted in one note. C2SP asks verifiers to accept at least 16; the cap bounds the work an
    /// attacker-supplied note can cause.
    /// </summary>
    public const int MaxSignatures = 100;

    /// <summary>Largest note parsed, in UTF-8 bytes.</summary>
    public const int MaxNoteBytes = 1 << 20;

    private const string SignaturePrefix = "— ";
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private SignedNote(string text, IReadOnlyList<NoteSignature> signatures)
    {
        Text = text;
        Signatures = signatures;
    }

    /// <summary>The signed text, including its final newline.</summary>
    public string Text { get; }

    /// <summary>Every signature line, in note order.</summary>
    public IReadOnlyList<NoteSignature> Signatures { get; }

    /// <summary>Signs <paramref name="text"/> with each signer, in order.</summary>
    public static SignedNote Sign(string text, params ReadOnlySpan<NoteSigner> signers)
    {
        if (!IsValidText(text, out var error))
        {
            throw new ArgumentException(error, nameof(text));
        }

        if (signers.IsEmpty)
        {
            throw new ArgumentException("A signed note needs at least one signer.", nameof(signers));
        }

        var bytes = StrictUtf8.GetBytes(text);
        var signatures = new NoteSignature[signers.Length];
        for (var i = 0; i < signers.Length; i++)
        {
            signatures[i] = signers[i].Sign(bytes);
        }

        return new SignedNote(text, signatures);
    }

    /// <summary>Parses a note from UTF-8 bytes (as read from a file or an HTTP body).</summary>
    public static bool TryParse(ReadOnlySpan<byte> note, [NotNullWhen(true)] out SignedNote? signedNote, out string error)
    {
        signedNote = null;
        if (note.Length > MaxNoteBytes)
        {
            error = $"the note is larger than {MaxNoteBytes} bytes";
            return false;
        }

        string text;
        try
        {
            text = StrictUtf8.GetString(note);
        }
        catch (DecoderFallbackException)
        {
            error = "the note is not valid UTF-8";
            return false;
        }

        return TryParse(text, out signedNote, out error);
    }

    /// <summary>Parses a note; the error says which rule of the format it breaks.</summary>
    public static bool TryParse(string note, [NotNullWhen(true)] out SignedNote? signedNote, out string error)
    {
        ArgumentNullException.ThrowIfNull(note);
        signedNote = null;
        if (note.Length > MaxNoteBytes)
        {
            error = $"the note is larger than {MaxNoteBytes} bytes";
            return false;
        }

        if (!HasOnlyAllowedCharacters(note, out error))
        {
            return false;
        }

        // The text ends at the last blank line; the text itself may contain blank lines.
        var split = note.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (split < 0)
        {
            error = "the note has no blank line between its text and its signatures";
            return false;
        }

        var text = note[..(split + 1)];
        var block = note[(split + 2)..];
        if (block.Length == 0 || block[^1] != '\n')
        {
            error = "the note's signature block is empty or does not end in a newline";
            return false;
        }

        var lines = block[..^1].Split('\n');
        if (lines.Length > MaxSignatures)
        {
            error = $"the note has {lines.Length} signatures; at most {MaxSignatures} are accepted";
            return false;
        }

        var signatures = new NoteSignature[lines.Length];
        for (var i = 0; i < lines.Length; i++)
        {
            if (!TryParseSignatureLine(lines[i], out var signature))
            {
                error = $"signature line {i + 1} is not '— <key name> <base64 key id and signature>'";
                return false;
            }

            signatures[i] = signature;
        }

        signedNote = new SignedNote(text, signatures);
        error = string.Empty;
        return true;
    }

    /// <summary>
    /// Verifies the note against trusted keys per C2SP: signatures by unknown (name, key id) pairs are ignored, a
    /// signature by a known key that fails to verify rejects the note, and at least one known key must have signed.
    /// </summary>
    /// <param name="trusted">The keys the caller trusts.</param>
    /// <param name="verifiedBy">Names of the trusted keys whose signatures verified.</param>
    public VerifyResult Verify(IEnumerable<NoteVerifier> trusted, out IReadOnlyList<string> verifiedBy)
    {
        ArgumentNullException.ThrowIfNull(trusted);
        var keys = new Dictionary<(string, uint), NoteVerifier>();
        foreach (var verifier in trusted)
        {
            keys[(verifier.Name, verifier.KeyId)] = verifier;
        }

        var names = new List<string>();
        verifiedBy = names;
        var text = StrictUtf8.GetBytes(Text);
        foreach (var signature in Signatures)
        {
            if (!keys.TryGetValue((signature.KeyName, signature.KeyId), out var verifier))
            {
                continue;
            }

            if (!verifier.Verify(text, signature.Signature.Span))
            {
                names.Clear();
                return VerifyResult.Fail($"the signature by trusted key {signature.KeyName} ({signature.KeyId:x8}) does not verify: the note was altered or mis-signed");
            }

            if (!names.Contains(signature.KeyName))
            {
                names.Add(signature.KeyName);
            }
        }

        return names.Count > 0
            ? VerifyResult.Success
            : VerifyResult.Fail("the note carries no signature by a trusted key");
    }

    /// <summary>A copy with one more signature line appended (e.g. during key rotation).</summary>
    public SignedNote AddSignature(NoteSigner signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        if (Signatures.Count >= MaxSignatures)
        {
            throw new InvalidOperationException($"A note carries at most {MaxSignatures} signatures.");
        }

        return new SignedNote(Text, [.. Signatures, signer.Sign(StrictUtf8.GetBytes(Text))]);
    }

    /// <summary>The note in its wire form.</summary>
    public override string ToString()
    {
        var builder = new StringBuilder(Text.Length + 1 + (Signatures.Count * 100));
        builder.Append(Text).Append('\n');
        foreach (var signature in Signatures)
        {
            builder.Append(signature.ToLine());
        }

        return builder.ToString();
    }

    /// <summary>The note in its wire form, UTF-8.</summary>
    public byte[] ToUtf8Bytes() => StrictUtf8.GetBytes(ToString());

    internal static bool IsValidText(string text, out string error)
    {
        if (string.IsNullOrEmpty(text) || text[^1] != '\n')
        {
            error = "note text must be non-empty and end in a newline";
            return false;
        }

        return HasOnlyAllowedCharacters(text, out error);
    }

    private static bool HasOnlyAllowedCharacters(string value, out string error)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c < 0x20 && c != '\n')
            {
                error = $"the note contains control character U+{(int)c:X4}; only newline is allowed";
                return false;
            }

            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    i++;
                    continue;
                }

                error = "the note is not valid UTF-8 (unpaired surrogate)";
                return false;
            }
        }

        error = string.Empty;
        return true;
    }

    private static bool TryParseSignatureLine(string line, [NotNullWhen(true)] out NoteSignature? signature)
    {
        signature = null;
        if (!line.StartsWith(SignaturePrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = line.AsSpan(SignaturePrefix.Length);
        var space = rest.IndexOf(' ');
        if (space <= 0)
        {
            return false;
        }

        var name = rest[..space];
        if (!KeyName.IsValid(name) || !StrictBase64.TryDecode(rest[(space + 1)..], out var blob) || blob.Length < 5)
        {
            return false;
        }

        signature = new NoteSignature(name.ToString(), BinaryPrimitives.ReadUInt32BigEndian(blob), blob.AsMemory(4));
        return true;
    }
}
