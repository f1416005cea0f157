using System.Text;

namespace Atp.Integrity.Tests;

/// <summary>C2SP signed-note interoperability (TestData/tlog/VECTORS.md §7) and the C2SP verification rules.</summary>
public sealed class SignedNoteTests
{
    private const string C2spVerifier = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    private const string C2spNote = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    private const string PeterSigner = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    private const string PeterVerifier = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    private const string EnochVerifier = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    private const string GoText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    private const string PeterLine = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    private const string EnochLine = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    [Fact]
    public void Verifies_the_c2sp_example_note()
    {
        var note = Parse(C2spNote);
        var result = note.Verify([NoteVerifier.Parse(C2spVerifier)], out var by);
        Assert.True(result.IsValid, result.Failure);
        Assert.Equal(["example.com/foo"], by);
        Assert.Equal("This is an example message.\n", note.Text);
        Assert.Equal(C2spNote, note.ToString());
    }

    [Fact]
    public void Verifies_the_go_sumdb_note_signed_by_two_keys()
    {
        var note = Parse(GoText + "\n" + PeterLine + EnochLine);
        Assert.True(note.Verify([NoteVerifier.Parse(PeterVerifier), NoteVerifier.Parse(EnochVerifier)], out var both).IsValid);
        Assert.Equal(["PeterNeumann", "EnochRoot"], both);

        // Only Peter trusted: Enoch's signature is from an unknown key and is ignored.
        Assert.True(note.Verify([NoteVerifier.Parse(PeterVerifier)], out var peter).IsValid);
        Assert.Equal(["PeterNeumann"], peter);
    }

    [Fact]
    public void Signing_the_go_text_with_the_go_key_reproduces_its_signature_byte_for_byte()
    {
        using var signer = NoteSigner.Parse(PeterSigner);
        Assert.Equal(PeterVerifier, signer.Verifier.VerifierKey);
        Assert.Equal(0xc74f20a3u, signer.KeyId);
        Assert.Equal(GoText + "\n" + PeterLine, SignedNote.Sign(GoText, signer).ToString());
        Assert.Equal(PeterSigner, signer.ExportSignerKey());
    }

    [Fact]
    public void Rejects_a_note_without_any_trusted_signature()
    {
        var note = Parse(GoText + "\n" + EnochLine);
        var result = note.Verify([NoteVerifier.Parse(PeterVerifier)], out var by);
        Assert.False(result.IsValid);
        Assert.Contains("no signature by a trusted key", result.Failure);
        Assert.Empty(by);
    }

    [Fact]
    public void Rejects_a_note_whose_trusted_signature_fails_even_if_another_verifies()
    {
        var tampered = Parse(GoText.Replace("answer", "ANSWER", StringComparison.Ordinal) + "\n" + PeterLine + EnochLine);
        Assert.False(tampered.Verify([NoteVerifier.Parse(EnochVerifier)], out _).IsValid);

        // A trusted key's bad signature rejects the note although the other trusted key's signature is good.
        using var fresh = NoteSigner.Generate("Fresh");
        var mixed = Parse(SignedNote.Sign(GoText, fresh).ToString().Replace("\n\n", "\n\n" + EnochLine.Replace("tiOHp", "tiOHq", StringComparison.Ordinal), StringComparison.Ordinal));
        var result = mixed.Verify([fresh.Verifier, NoteVerifier.Parse(EnochVerifier)], out _);
        Assert.False(result.IsValid);
        Assert.Contains("EnochRoot", result.Failure);
    }

    [Fact]
    public void Ignores_signatures_sharing_only_the_name_or_only_the_id_of_a_trusted_key()
    {
        using var trusted = NoteSigner.Generate("log.example/a");
        using var impostor = NoteSigner.Generate("log.example/a");
        var note = SignedNote.Sign("hello\n", impostor, trusted);
        Assert.True(note.Verify([trusted.Verifier], out var by).IsValid);
        Assert.Equal(["log.example/a"], by);
    }

    [Fact]
    public void Accepts_a_note_with_sixteen_signatures()
    {
        var signers = Enumerable.Range(0, 16).Select(i => NoteSigner.Generate($"witness{i}.example")).ToArray();
        try
        {
            var note = Parse(SignedNote.Sign("sixteen\n", signers).ToString());
            Assert.Equal(16, note.Signatures.Count);
            Assert.True(note.Verify([signers[15].Verifier], out _).IsValid);
            Assert.True(note.Verify(signers.Select(s => s.Verifier), out var all).IsValid);
            Assert.Equal(16, all.Count);
        }
        finally
        {
            foreach (var signer in signers)
            {
                signer.Dispose();
            }
        }
    }

    [Fact]
    public void Key_rotation_old_and_new_key_both_sign_and_either_verifier_accepts()
    {
        using var oldKey = NoteSigner.Generate("cell.example/westeu-prod-1");
        using var newKey = NoteSigner.Generate("cell.example/westeu-prod-1");
        var note = SignedNote.Sign("rotating\n", oldKey).AddSignature(newKey);
        Assert.True(Parse(note.ToString()).Verify([oldKey.Verifier], out _).IsValid);
        Assert.True(Parse(note.ToString()).Verify([newKey.Verifier], out _).IsValid);
    }

    [Theory]
    [InlineData("no blank line\n— a AAAAAAA=\n")]
    [InlineData("text\n\n")]
    [InlineData("text\n\n— a AAAAAAA=")]
    [InlineData("text\n\n- a AAAAAAA=\n")]
    [InlineData("text\n\n— a\n")]
    [InlineData("text\n\n— a+b AAAAAAA=\n")]
    [InlineData("text\n\n— a AAAA\n")]
    [InlineData("text\n\n— a AAAAAAA\n")]
    [InlineData("text\n\n— a AAAA AAA=\n")]
    [InlineData("tab\there\n\n— a AAAAAAA=\n")]
    public void Rejects_malformed_notes(string note)
    {
        Assert.False(SignedNote.TryParse(note, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void Rejects_invalid_utf8_and_too_many_signatures()
    {
        Assert.False(SignedNote.TryParse([0x61, 0xff, 0x0a, 0x0a], out _, out var utf8));
        Assert.Contains("UTF-8", utf8);
        var many = "t\n\n" + string.Concat(Enumerable.Repeat("— a AAAAAAA=\n", SignedNote.MaxSignatures + 1));
        Assert.False(SignedNote.TryParse(many, out _, out var count));
        Assert.Contains("at most", count);
    }

    [Fact]
    public void Note_text_may_contain_blank_lines()
    {
        using var signer = NoteSigner.Generate("k");
        var text = "first\n\nthird\n";
        var note = Parse(SignedNote.Sign(text, signer).ToString());
        Assert.Equal(text, note.Text);
        Assert.True(note.Verify([signer.Verifier], out _).IsValid);
    }

    [Fact]
    public void Every_mangled_verifier_key_is_rejected()
    {
        // As Go's TestNewVerifier: dropping any character or changing any character must not yield a usable key
        // (except changes that leave the same key, which cannot happen with strict base64 and lowercase hex).
        var original = PeterVerifier;
        for (var i = 0; i < original.Length; i++)
        {
            var dropped = original.Remove(i, 1);
            Assert.False(NoteVerifier.TryParse(dropped, out _, out _), $"accepted with char {i} removed: {dropped}");
            var changed = original[..i] + (char)(original[i] ^ 0x01) + original[(i + 1)..];
            Assert.False(NoteVerifier.TryParse(changed, out _, out _), $"accepted with char {i} changed: {changed}");
        }

        Assert.True(NoteVerifier.TryParse(original, out _, out _));
    }

    [Fact]
    public void Signer_key_errors_never_echo_the_key()
    {
        var broken = PeterSigner[..^2] + "!!";
        var error = Assert.Throws<FormatException>(() => NoteSigner.Parse(broken));
        Assert.DoesNotContain("AYEKFALV", error.Message);
        Assert.Throws<FormatException>(() => NoteSigner.Parse(PeterSigner.Replace("c74f20a3", "c74f20a4", StringComparison.Ordinal)));
    }

    [Fact]
    public void Generated_keys_round_trip_through_their_text_form()
    {
        using var signer = NoteSigner.Generate("atp.example/test");
        using var again = NoteSigner.Parse(signer.ExportSignerKey());
        Assert.Equal(signer.Verifier.VerifierKey, again.Verifier.VerifierKey);
        var signature = again.Sign(Encoding.UTF8.GetBytes("x\n"));
        Assert.True(signer.Verifier.Verify("x\n"u8, signature.Signature.Span));
    }

    private static SignedNote Parse(string text)
    {
        Assert.True(SignedNote.TryParse(text, out var note, out var error), error);
        return note;
    }
}
