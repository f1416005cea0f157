using Atp.Core.Signatures;
using CsCheck;

namespace Atp.Core.Tests.Signatures;

/// <summary>Sign → parse → verify over random target URIs, bodies and parameters.</summary>
public sealed class SignaturePropertyTests
{
    private static readonly Gen<string> PathSegment = Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-._~%"], 1, 12];

    private static readonly Gen<string> TargetUri =
        Gen.Select(Gen.OneOf(Gen.Const("http"), Gen.Const("https")), Gen.OneOf(Gen.Const("127.0.0.1:8080"), Gen.Const("atp.example.com"), Gen.Const("[::1]:9")), PathSegment.Array[0, 5], Gen.String[Gen.Char["abc=&+/?%019"], 0, 20])
            .Select((scheme, host, segments, query) => $"{scheme}://{host}/{string.Join('/', segments)}" + (query.Length == 0 ? "" : "?" + query));

    private static readonly Gen<string> VisibleAscii = Gen.String[Gen.Char['!', '~'], 1, 128];

    [Fact]
    public void Signed_requests_verify_and_a_changed_uri_or_body_does_not()
    {
        Gen.Select(TargetUri, Gen.Byte.Array[0, 300], VisibleAscii, VisibleAscii, Gen.Long[0, 1L << 40], Gen.Byte.Array[32])
            .Sample((uri, body, keyId, nonce, created, secret) =>
            {
                var headers = AtpRequestSignature.Sign(secret, keyId, "POST", uri, body, created, nonce);
                Assert.True(AtpRequestSignature.TryParse(headers.SignatureInput, headers.Signature, body.Length > 0, out var parsed, out var failure), failure);
                Assert.Equal((keyId, created, nonce), (parsed.KeyId, parsed.Created, parsed.Nonce));

                SignatureComponents Message(string target) => new("POST", target, name => name == "content-digest" ? headers.ContentDigest : null);
                Assert.True(parsed.Verify(secret, Message(uri)).IsValid);
                Assert.False(parsed.Verify(secret, Message(uri + "x")).IsValid);
                if (body.Length > 0)
                {
                    Assert.True(ContentDigest.Verify(headers.ContentDigest, body).IsValid);
                    body[^1] ^= 1;
                    Assert.Equal(ContentDigestStatus.Mismatch, ContentDigest.Verify(headers.ContentDigest, body).Status);
                }
            }, iter: 500);
    }

    [Fact]
    public void The_parser_never_throws_on_arbitrary_printable_input()
    {
        Gen.String[Gen.Char[" !\"(),:;=?*-09AZaz\\/+\t"], 0, 60].Sample(text =>
        {
            if (StructuredFieldParser.TryParseDictionary(text, out var members, out var failure))
            {
                Assert.NotNull(members);
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(failure));
            }
        }, iter: 5_000);
    }
}
