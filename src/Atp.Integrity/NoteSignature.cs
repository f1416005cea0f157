namespace Atp.Integrity;

/// <summary>
/// One signature line of a signed note: <c>— &lt;key name&gt; base64(key id ‖ signature)</c> (C2SP signed-note).
/// </summary>
public sealed class NoteSignature
{
    /// <summary>Creates a signature line's content.</summary>
    public NoteSignature(string keyName, uint keyId, ReadOnlyMemory<byte> signature)
    {
        if (!Atp.Integrity.KeyName.IsValid(keyName))
        {
            throw new ArgumentException("A key name must be non-empty and contain no spaces or '+'.", nameof(keyName));
        }

        KeyName = keyName;
        KeyId = keyId;
        Signature = signature;
    }

    /// <summary>Name of the signing key.</summary>
    public string KeyName { get; }

    /// <summary>The 32-bit key id that, with the name, identifies the key and its algorithm.</summary>
    public uint KeyId { get; }

    /// <summary>The signature bytes (without the key id).</summary>
    public ReadOnlyMemory<byte> Signature { get; }

    /// <summary>The line as it appears in a note, including the final newline.</summary>
    public string ToLine()
    {
        var blob = new byte[4 + Signature.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(blob, KeyId);
        Signature.Span.CopyTo(blob.AsSpan(4));
        return $"— {KeyName} {Convert.ToBase64String(blob)}\n";
    }
}
