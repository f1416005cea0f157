using System.Text;
using Atp.Core.Signatures;

namespace Atp.Core.Tests.Signatures;

/// <summary>RFC 9530 Content-Digest with sha-256.</summary>
public sealed class ContentDigestTests
{
    // RFC 9530 §2 and Appendix B: the body {"hello": "world"} and its digests.
    private static readonly byte[] Body = Encoding.ASCII.GetBytes("{\"hello\": \"world\"}");
    private const string Sha256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
    private const string Sha512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

    [Fact]
    public void Creates_the_RFC_9530_sha_256_value()
    {
        Assert.Equal(Sha256, ContentDigest.Create(Body));
    }

    [Theory]
    [InlineData(Sha256)]
    [InlineData(Sha512 + ", " + Sha256)]
    [InlineData(Sha256 + ",\t" + Sha512)]
    [InlineData("  " + Sha256 + "  ")]
    public void Verifies_the_RFC_9530_example_ignoring_other_algorithms(string header)
    {
        var result = ContentDigest.Verify(header, Body);
        Assert.True(result.IsValid, result.Failure);
        Assert.Equal(ContentDigestStatus.Valid, result.Status);
    }

    [Fact]
    public void Reports_a_mismatch_for_a_changed_body()
    {
        var changed = (byte[])Body.Clone();
        changed[^2] ^= 1;

        var result = ContentDigest.Verify(Sha256, changed);

        Assert.Equal(ContentDigestStatus.Mismatch, result.Status);
        Assert.False(result.IsValid);
    }

    [Fact]
    public void Reports_a_mismatch_for_the_digest_of_the_empty_body()
    {
        Assert.Equal(ContentDigestStatus.Mismatch, ContentDigest.Verify(ContentDigest.Create([]), Body).Status);
        Assert.Equal(ContentDigestStatus.Valid, ContentDigest.Verify(ContentDigest.Create([]), []).Status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(Sha512)]
    public void Reports_missing_when_there_is_no_sha_256_member(string? header)
    {
        Assert.Equal(ContentDigestStatus.Missing, ContentDigest.Verify(header, Body).Status);
    }

    [Theory]
    [InlineData("sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=")]
    [InlineData("sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"")]
    [InlineData("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:")]
    [InlineData("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9D:")]
    [InlineData("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=")]
    [InlineData("SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:")]
    [InlineData(Sha256 + ", " + Sha256)]
    [InlineData(Sha256 + ",")]
    [InlineData("sha-256")]
    public void Reports_malformed_headers(string header)
    {
        var result = ContentDigest.Verify(header, Body);
        Assert.Equal(ContentDigestStatus.Malformed, result.Status);
        Assert.Contains("Content-Digest", result.Failure);
    }
}
