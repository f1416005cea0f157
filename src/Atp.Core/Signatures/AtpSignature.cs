using Atp.Integrity;

namespace Atp.Core.Signatures;

/// <summary>
/// A request's <c>atp</c> signature that follows the ATP profile (from <see cref="AtpRequestSignature.TryParse"/>);
/// not yet verified.
/// </summary>
public sealed class AtpSignature
{
    private readonly byte[] _signature;
    private readonly string _signatureParams;

    internal AtpSignature(string keyId, long created, string nonce, IReadOnlyList<string> components, bool coversContentDigest, byte[] signature, string signatureParams)
    {
        KeyId = keyId;
        Created = created;
        Nonce = nonce;
        Components = components;
        CoversContentDigest = coversContentDigest;
        _signature = signature;
        _signatureParams = signatureParams;
    }

    /// <summary>The API key id (<c>keyid</c>) whose signing secret verifies this signature.</summary>
    public string KeyId { get; }

    /// <summary>The <c>created</c> parameter, Unix seconds; the server checks it against its clock.</summary>
    public long Created { get; }

    /// <summary>The <c>nonce</c> parameter; the server refuses one it has seen within the time window.</summary>
    public string Nonce { get; }

    /// <summary>The covered components, in signed order.</summary>
    public IReadOnlyList<string> Components { get; }

    /// <summary>
    /// True when <c>content-digest</c> is covered: then, after <see cref="Verify"/>, the server must also check the
    /// header against the body with <see cref="ContentDigest.Verify"/>, or the body is not authenticated.
    /// </summary>
    public bool CoversContentDigest { get; }

    /// <summary>The 32 signature bytes.</summary>
    public ReadOnlyMemory<byte> Signature => _signature;

    /// <summary>Rebuilds the signature base from <paramref name="message"/> and checks the HMAC in constant time.</summary>
    /// <exception cref="ArgumentException"><paramref name="secret"/> is not 32 bytes.</exception>
    public VerifyResult Verify(ReadOnlySpan<byte> secret, SignatureComponents message)
    {
        ArgumentNullException.ThrowIfNull(message);
        AtpRequestSignature.RequireSecret(secret);
        if (!SignatureBase.TryCreate(Components, _signatureParams, message, out var signatureBase, out var failure))
        {
            return VerifyResult.Fail(failure);
        }

        return SignatureBase.VerifyMac(secret, signatureBase, _signature)
            ? VerifyResult.Success
            : VerifyResult.Fail("the request signature does not verify");
    }
}
