using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Atp.Integrity.Tests;

/// <summary>A signer whose key is held elsewhere (an HSM): NoteSigner.FromExternalKey.</summary>
public sealed class ExternalNoteSignerTests
{
    private const string Name = "atp.test/external";
    private static readonly byte[] Seed = Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray();

    [Fact]
    public void An_external_key_signs_exactly_as_the_same_key_held_in_process()
    {
        using var key = Key.Import(SignatureAlgorithm.Ed25519, Seed, KeyBlobFormat.RawPrivateKey);
        using var external = NoteSigner.FromExternalKey(Name, key.PublicKey.Export(KeyBlobFormat.RawPublicKey), message => SignatureAlgorithm.Ed25519.Sign(key, message));
        using var local = NoteSigner.FromSeed(Name, Seed);
        var text = new Checkpoint(Name + "/t", 3, default).ToNoteText();

        Assert.Equal(local.Verifier.VerifierKey, external.Verifier.VerifierKey);

        // Ed25519 is deterministic (RFC 8032 §5.1.6): the same key gives the same signature.
        Assert.Equal(local.Sign(text).Signature.ToArray(), external.Sign(text).Signature.ToArray());
        Assert.Throws<InvalidOperationException>(external.ExportSignerKey);
    }

    [Fact]
    public void A_signature_by_another_key_or_of_the_wrong_length_is_refused()
    {
        using var key = Key.Import(SignatureAlgorithm.Ed25519, Seed, KeyBlobFormat.RawPrivateKey);
        using var other = Key.Create(SignatureAlgorithm.Ed25519);
        var publicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        var text = Encoding.UTF8.GetBytes(new Checkpoint(Name + "/t", 3, default).ToNoteText());

        using var wrongKey = NoteSigner.FromExternalKey(Name, publicKey, message => SignatureAlgorithm.Ed25519.Sign(other, message));
        using var truncated = NoteSigner.FromExternalKey(Name, publicKey, message => SignatureAlgorithm.Ed25519.Sign(key, message)[..63]);

        Assert.Throws<CryptographicException>(() => wrongKey.Sign(text));
        Assert.Throws<CryptographicException>(() => truncated.Sign(text));
        Assert.Throws<ArgumentException>(() => NoteSigner.FromExternalKey(Name, publicKey.AsSpan(0, 31), _ => []));
    }
}
