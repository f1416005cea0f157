using System.Text;
using Atp.Core.Signatures;

namespace Atp.Core.Tests.Signatures;

/// <summary>The ATP profile: sign on the client, parse and verify on the server, and every tampering caught.</summary>
public sealed class AtpRequestSignatureTests
{
    private static readonly byte[] Secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private const string KeyId = "key_0123456789abcdef";
    private const string Uri = "http://127.0.0.1:8080/v1/tenants/acme/events?x=1";
    private const long Created = 1618884473;
    private const string Nonce = "b3k2pp5k7z";
    private static readonly byte[] EventsBody = Encoding.UTF8.GetBytes("{\"events\":[{\"type\":\"document.update\"}]}");

    /// <summary>A request as the server sees it: method, target URI, headers and body.</summary>
    private sealed record Request(string Method, string TargetUri, byte[] Body, Dictionary<string, string> Headers)
    {
        public static Request Signed(string method = "POST", string uri = Uri, byte[]? body = null, byte[]? secret = null, string keyId = KeyId, long created = Created, string nonce = Nonce)
        {
            body ??= EventsBody;
            var headers = AtpRequestSignature.Sign(secret ?? Secret, keyId, method, uri, body, created, nonce);
            var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                [AtpRequestSignature.SignatureInputHeader] = headers.SignatureInput,
                [AtpRequestSignature.SignatureHeader] = headers.Signature,
            };
            if (headers.ContentDigest is { } digest)
            {
                fields[ContentDigest.HeaderName] = digest;
            }

            return new Request(method, uri, body, fields);
        }

        public Request With(string header, string? value)
        {
            var headers = new Dictionary<string, string>(Headers, StringComparer.OrdinalIgnoreCase);
            if (value is null)
            {
                headers.Remove(header);
            }
            else
            {
                headers[header] = value;
            }

            return this with { Headers = headers };
        }

        public SignatureComponents Components() => new(Method, TargetUri, name => Headers.GetValueOrDefault(name));

        /// <summary>What the server does: parse, verify the signature, then the body against the covered digest.</summary>
        public string? Verify(byte[]? secret = null)
        {
            if (!AtpRequestSignature.TryParse(Headers.GetValueOrDefault("Signature-Input"), Headers.GetValueOrDefault("Signature"), Body.Length > 0, out var parsed, out var failure))
            {
                return failure;
            }

            var result = parsed.Verify(secret ?? Secret, Components());
            if (!result.IsValid)
            {
                return result.Failure;
            }

            var digest = ContentDigest.Verify(Headers.GetValueOrDefault("Content-Digest"), Body);
            return parsed.CoversContentDigest && !digest.IsValid ? digest.Failure : null;
        }
    }

    [Fact]
    public void Produces_the_documented_header_shape()
    {
        var headers = AtpRequestSignature.Sign(Secret, KeyId, "POST", Uri, EventsBody, Created, Nonce);

        Assert.Equal("atp=(\"@method\" \"@target-uri\" \"content-digest\");created=1618884473;nonce=\"b3k2pp5k7z\";keyid=\"key_0123456789abcdef\";alg=\"hmac-sha256\"", headers.SignatureInput);
        Assert.Matches("^atp=:[A-Za-z0-9+/]{43}=:$", headers.Signature);
        Assert.Equal(ContentDigest.Create(EventsBody), headers.ContentDigest);
    }

    [Fact]
    public void Signing_is_deterministic_and_matches_an_independent_HMAC_over_the_documented_base()
    {
        var headers = AtpRequestSignature.Sign(Secret, KeyId, "POST", Uri, EventsBody, Created, Nonce);
        var expectedBase =
            "\"@method\": POST\n" +
            $"\"@target-uri\": {Uri}\n" +
            $"\"content-digest\": {ContentDigest.Create(EventsBody)}\n" +
            "\"@signature-params\": " + headers.SignatureInput["atp=".Length..];
        var mac = System.Security.Cryptography.HMACSHA256.HashData(Secret, Encoding.ASCII.GetBytes(expectedBase));

        Assert.Equal($"atp=:{Convert.ToBase64String(mac)}:", headers.Signature);
        Assert.Equal(headers, AtpRequestSignature.Sign(Secret, KeyId, "POST", Uri, EventsBody, Created, Nonce));
    }

    [Fact]
    public void A_signed_request_with_a_body_verifies_and_exposes_its_parameters()
    {
        var request = Request.Signed();

        Assert.Null(request.Verify());
        Assert.True(AtpRequestSignature.TryParse(request.Headers["Signature-Input"], request.Headers["Signature"], hasBody: true, out var parsed, out _));
        Assert.Equal(KeyId, parsed.KeyId);
        Assert.Equal(Created, parsed.Created);
        Assert.Equal(Nonce, parsed.Nonce);
        Assert.Equal(new[] { "@method", "@target-uri", "content-digest" }, parsed.Components);
        Assert.True(parsed.CoversContentDigest);
        Assert.Equal(32, parsed.Signature.Length);
    }

    [Fact]
    public void A_request_without_a_body_is_signed_without_content_digest()
    {
        var request = Request.Signed(method: "GET", body: []);

        Assert.False(request.Headers.ContainsKey("Content-Digest"));
        Assert.DoesNotContain("content-digest", request.Headers["Signature-Input"]);
        Assert.Null(request.Verify());
    }

    [Fact]
    public void Fails_for_a_flipped_method()
    {
        Assert.Contains("does not verify", (Request.Signed() with { Method = "PUT" }).Verify());
        Assert.Contains("does not verify", (Request.Signed() with { Method = "post" }).Verify());
    }

    [Fact]
    public void Fails_for_any_changed_character_of_the_target_uri()
    {
        var request = Request.Signed();
        for (var i = 0; i < Uri.Length; i++)
        {
            var changed = Uri[..i] + (char)(Uri[i] == 'a' ? 'b' : 'a') + Uri[(i + 1)..];
            Assert.NotNull((request with { TargetUri = changed }).Verify());
        }

        Assert.NotNull((request with { TargetUri = Uri + "&y=2" }).Verify());
        Assert.NotNull((request with { TargetUri = Uri[..^4] }).Verify());
    }

    [Fact]
    public void Fails_for_a_changed_body_even_with_a_matching_recomputed_digest()
    {
        var request = Request.Signed();
        var body = (byte[])EventsBody.Clone();
        body[5] ^= 0x20;

        Assert.Contains("does not match the body", (request with { Body = body }).Verify());
        Assert.Contains("does not verify", (request with { Body = body }).With("Content-Digest", ContentDigest.Create(body)).Verify());
    }

    [Theory]
    [InlineData("created=1618884473", "created=1618884474")]
    [InlineData("nonce=\"b3k2pp5k7z\"", "nonce=\"b3k2pp5k7y\"")]
    [InlineData("keyid=\"key_0123456789abcdef\"", "keyid=\"key_0123456789abcdee\"")]
    [InlineData("\"@method\" \"@target-uri\" \"content-digest\"", "\"@target-uri\" \"@method\" \"content-digest\"")]
    [InlineData(";alg=\"hmac-sha256\"", ";alg=\"hmac-sha256\";expires=1618884773")]
    public void Fails_for_any_changed_signature_parameter(string original, string replacement)
    {
        var request = Request.Signed();
        var input = request.Headers["Signature-Input"];
        Assert.Contains(original, input);

        Assert.Contains("does not verify", request.With("Signature-Input", input.Replace(original, replacement, StringComparison.Ordinal)).Verify());
    }

    [Fact]
    public void Fails_for_any_flipped_bit_of_the_signature()
    {
        var request = Request.Signed();
        var signature = Convert.FromBase64String(request.Headers["Signature"]["atp=:".Length..^1]);
        for (var bit = 0; bit < signature.Length * 8; bit++)
        {
            var flipped = (byte[])signature.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Contains("does not verify", request.With("Signature", $"atp=:{Convert.ToBase64String(flipped)}:").Verify());
        }
    }

    [Fact]
    public void Fails_with_another_secret()
    {
        var other = (byte[])Secret.Clone();
        other[31] ^= 1;

        Assert.Contains("does not verify", Request.Signed().Verify(other));
        Assert.Contains("does not verify", Request.Signed(secret: other).Verify());
    }

    [Fact]
    public void Ignores_other_labels_and_their_order()
    {
        var request = Request.Signed();
        var input = "sig1=(\"@method\");created=1;keyid=\"x\", " + request.Headers["Signature-Input"];
        var signature = request.Headers["Signature"] + ", sig1=:AAAA:";

        Assert.Null(request.With("Signature-Input", input).With("Signature", signature).Verify());
    }

    [Fact]
    public void Refuses_a_body_without_covered_content_digest()
    {
        var unsigned = Request.Signed(method: "POST", body: []) with { Body = EventsBody };

        Assert.Contains("must be signed over \"content-digest\"", unsigned.Verify());
    }

    [Theory]
    [InlineData(null, "atp=:AAAA:", "needs both")]
    [InlineData("atp=(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", null, "needs both")]
    [InlineData("atp=(\"@method\" \"@target-uri\";created=1", "atp=:AAAA:", "Signature-Input is malformed")]
    [InlineData("atp=(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "atp=:AAAA", "Signature is malformed")]
    [InlineData("other=(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "atp=:AAAA:", "no inner list labelled 'atp'")]
    [InlineData("atp=\"@method\";created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "atp=:AAAA:", "no inner list labelled 'atp'")]
    [InlineData("atp=(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "other=:AAAA:", "no byte sequence labelled 'atp'")]
    [InlineData("atp=(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "atp=:AAAA:", "signature is 32 bytes, not 3")]
    public void Refuses_headers_that_are_missing_or_malformed(string? input, string? signature, string reason)
    {
        Assert.False(AtpRequestSignature.TryParse(input, signature, hasBody: false, out var parsed, out var failure));
        Assert.Null(parsed);
        Assert.Contains(reason, failure);
    }

    [Theory]
    [InlineData("(\"@method\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "must cover \"@method\" and \"@target-uri\"")]
    [InlineData("(\"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "must cover \"@method\" and \"@target-uri\"")]
    [InlineData("(\"@method\" \"@target-uri\" \"@method\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "covered twice")]
    [InlineData("(\"@method\" \"@target-uri\" \"content-digest\";sf);created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "component parameters")]
    [InlineData("(\"@method\" \"@target-uri\" date);created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "must be strings")]
    [InlineData("(\"@method\" \"@target-uri\");nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "'created'")]
    [InlineData("(\"@method\" \"@target-uri\");created=\"1\";nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "'created'")]
    [InlineData("(\"@method\" \"@target-uri\");created=-1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", "'created'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;keyid=\"k\";alg=\"hmac-sha256\"", "'nonce'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"\";keyid=\"k\";alg=\"hmac-sha256\"", "'nonce'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"a b\";keyid=\"k\";alg=\"hmac-sha256\"", "'nonce'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=n;keyid=\"k\";alg=\"hmac-sha256\"", "'nonce'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"n\";alg=\"hmac-sha256\"", "'keyid'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\"", "'alg'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha512\"", "'alg'")]
    [InlineData("(\"@method\" \"@target-uri\");created=1;nonce=\"n\";keyid=\"k\";alg=hmac-sha256", "'alg'")]
    public void Refuses_signatures_outside_the_ATP_profile(string member, string reason)
    {
        var signature = $"atp=:{Convert.ToBase64String(new byte[32])}:";

        Assert.False(AtpRequestSignature.TryParse("atp=" + member, signature, hasBody: false, out _, out var failure));
        Assert.Contains(reason, failure);
    }

    [Fact]
    public void Refuses_a_nonce_longer_than_128_characters()
    {
        var signature = $"atp=:{Convert.ToBase64String(new byte[32])}:";
        string Input(int length) => $"atp=(\"@method\" \"@target-uri\");created=1;nonce=\"{new string('n', length)}\";keyid=\"k\";alg=\"hmac-sha256\"";

        Assert.True(AtpRequestSignature.TryParse(Input(128), signature, hasBody: false, out _, out _));
        Assert.False(AtpRequestSignature.TryParse(Input(129), signature, hasBody: false, out _, out _));
    }

    [Fact]
    public void Verification_fails_when_an_extra_covered_field_is_missing_from_the_request()
    {
        var signature = $"atp=:{Convert.ToBase64String(new byte[32])}:";
        Assert.True(AtpRequestSignature.TryParse("atp=(\"@method\" \"@target-uri\" \"x-tenant\");created=1;nonce=\"n\";keyid=\"k\";alg=\"hmac-sha256\"", signature, hasBody: false, out var parsed, out _));

        var result = parsed.Verify(Secret, new SignatureComponents("GET", Uri, _ => null));

        Assert.False(result.IsValid);
        Assert.Contains("no \"x-tenant\" field", result.Failure);
    }

    [Fact]
    public void Refuses_secrets_and_parameters_that_cannot_be_used()
    {
        Assert.Throws<ArgumentException>(() => AtpRequestSignature.Sign(new byte[16], KeyId, "GET", Uri, [], Created, Nonce));
        Assert.Throws<ArgumentException>(() => AtpRequestSignature.Sign(Secret, "", "GET", Uri, [], Created, Nonce));
        Assert.Throws<ArgumentException>(() => AtpRequestSignature.Sign(Secret, KeyId, "GET", Uri, [], Created, "has space"));
        Assert.Throws<ArgumentException>(() => AtpRequestSignature.Sign(Secret, KeyId, "GET", "http://x/\nInjected: 1", [], Created, Nonce));
        Assert.Throws<ArgumentOutOfRangeException>(() => AtpRequestSignature.Sign(Secret, KeyId, "GET", Uri, [], -1, Nonce));
    }

    [Fact]
    public void Decodes_only_base64_of_exactly_32_bytes_as_a_secret()
    {
        var secret = AtpRequestSignature.NewSecret();
        Assert.Equal(32, secret.Length);

        Assert.True(AtpRequestSignature.TryDecodeSecret(" " + Convert.ToBase64String(secret) + "\n", out var decoded));
        Assert.Equal(secret, decoded);
        Assert.False(AtpRequestSignature.TryDecodeSecret(Convert.ToBase64String(new byte[31]), out _));
        Assert.False(AtpRequestSignature.TryDecodeSecret(Convert.ToBase64String(new byte[33]), out _));
        Assert.False(AtpRequestSignature.TryDecodeSecret("not base64!", out _));
        Assert.False(AtpRequestSignature.TryDecodeSecret(null, out _));
    }

    [Fact]
    public void Nonces_are_fresh_visible_ascii()
    {
        var nonces = Enumerable.Range(0, 100).Select(_ => AtpRequestSignature.NewNonce()).ToList();
        Assert.Equal(100, nonces.Distinct().Count());
        Assert.All(nonces, n => Assert.Matches("^[A-Za-z0-9_-]{22}$", n));
    }
}
