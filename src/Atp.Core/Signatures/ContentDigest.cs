using System.Security.Cryptography;

namespace Atp.Core.Signatures;

/// <summary>How a Content-Digest header compared with a body.</summary>
public enum ContentDigestStatus
{
    Valid,

    /// <summary>No header, or a header without a <c>sha-256</c> member.</summary>
    Missing,

    /// <summary>Not an RFC 8941 dictionary, or the <c>sha-256</c> member is not a 32-byte byte sequence.</summary>
    Malformed,

    /// <summary>Well formed, but the body has a different SHA-256.</summary>
    Mismatch,
}

/// <summary>The outcome of <see cref="ContentDigest.Verify"/>, with a reason a client can read when it failed.</summary>
public readonly record struct ContentDigestResult(ContentDigestStatus Status, string? Failure)
{
    public bool IsValid => Status == ContentDigestStatus.Valid;
}

/// <summary>RFC 9530 Content-Digest with the <c>sha-256</c> algorithm, the one ATP sends and requires.</summary>
public static class ContentDigest
{
    public const string HeaderName = "Content-Digest";

    /// <summary>RFC 9530 §5: the algorithm key in the dictionary.</summary>
    internal const string Sha256Key = "sha-256";

    /// <summary>The header value for <paramref name="body"/>: <c>sha-256=:&lt;base64&gt;:</c>.</summary>
    public static string Create(ReadOnlySpan<byte> body)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(body, hash);
        return $"{Sha256Key}=:{Convert.ToBase64String(hash)}:";
    }

    /// <summary>
    /// Checks the <c>sha-256</c> member of <paramref name="header"/> (the field value, multiple lines joined with ", ")
    /// against <paramref name="body"/>; other algorithms the sender added are ignored.
    /// </summary>
    public static ContentDigestResult Verify(string? header, ReadOnlySpan<byte> body)
    {
        if (string.IsNullOrEmpty(header))
        {
            return new(ContentDigestStatus.Missing, "no Content-Digest header");
        }

        if (!StructuredFieldParser.TryParseDictionary(header, out var members, out var failure))
        {
            return new(ContentDigestStatus.Malformed, $"Content-Digest is malformed: {failure}");
        }

        if (StructuredFieldParser.Find(members, Sha256Key) is not { } member)
        {
            return new(ContentDigestStatus.Missing, "Content-Digest has no sha-256 digest");
        }

        if (member.Item is not { Kind: SfKind.ByteSequence, Bytes: { Length: SHA256.HashSizeInBytes } expected })
        {
            return new(ContentDigestStatus.Malformed, "Content-Digest sha-256 is not a 32-byte byte sequence");
        }

        Span<byte> actual = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(body, actual);
        return CryptographicOperations.FixedTimeEquals(actual, expected)
            ? new(ContentDigestStatus.Valid, null)
            : new(ContentDigestStatus.Mismatch, "Content-Digest sha-256 does not match the body");
    }
}
