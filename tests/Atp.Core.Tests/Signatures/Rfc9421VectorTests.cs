using Atp.Core.Signatures;

namespace Atp.Core.Tests.Signatures;

/// <summary>RFC 9421 Appendix B.2.5: HMAC-SHA256 over the test request with the B.1.5 key "test-shared-secret".</summary>
public sealed class Rfc9421VectorTests
{
    // RFC 9421 Appendix B.1.5.
    private static readonly byte[] TestSharedSecret = Convert.FromBase64String(
        "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==");

    private const string SignatureInput = "sig-b25=(\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"";
    private const string ExpectedSignature = "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=";

    private const string ExpectedBase =
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n" +
        "\"@authority\": example.com\n" +
        "\"content-type\": application/json\n" +
        "\"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"";

    // RFC 9421 Appendix B.2: the test-request message (POST /foo?param=Value&Pet=dog, Host: example.com).
    private static SignatureComponents TestRequest() => new(
        "POST",
        "https://example.com/foo?param=Value&Pet=dog",
        name => name switch
        {
            "host" => "example.com",
            "date" => "Tue, 20 Apr 2021 02:07:55 GMT",
            "content-type" => "application/json",
            "content-digest" => "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            "content-length" => "18",
            _ => null,
        });

    private static SfMember Member()
    {
        Assert.True(StructuredFieldParser.TryParseDictionary(SignatureInput, out var members, out var failure), failure);
        return Assert.Single(members);
    }

    private static string[] Components(SfMember member) => member.InnerList!.Select(i => i.Value.Text!).ToArray();

    [Fact]
    public void Builds_the_signature_base_of_B_2_5_byte_for_byte()
    {
        var member = Member();

        Assert.True(SignatureBase.TryCreate(Components(member), member.RawValue, TestRequest(), out var signatureBase, out var failure), failure);

        Assert.Equal(ExpectedBase, signatureBase);
    }

    [Fact]
    public void Computes_the_signature_of_B_2_5_byte_for_byte()
    {
        Span<byte> mac = stackalloc byte[32];
        SignatureBase.Mac(TestSharedSecret, ExpectedBase, mac);

        Assert.Equal(ExpectedSignature, Convert.ToBase64String(mac));
        Assert.True(SignatureBase.VerifyMac(TestSharedSecret, ExpectedBase, Convert.FromBase64String(ExpectedSignature)));
    }

    [Fact]
    public void Rejects_the_B_2_5_signature_over_a_changed_component()
    {
        var member = Member();
        var changed = new SignatureComponents("POST", "https://example.org/foo", name => name == "date" ? "Tue, 20 Apr 2021 02:07:55 GMT" : "application/json");

        Assert.True(SignatureBase.TryCreate(Components(member), member.RawValue, changed, out var signatureBase, out _));
        Assert.False(SignatureBase.VerifyMac(TestSharedSecret, signatureBase, Convert.FromBase64String(ExpectedSignature)));
    }

    [Theory]
    [InlineData("@method", "POST")]
    [InlineData("@target-uri", "https://example.com/foo?param=Value&Pet=dog")]
    [InlineData("@authority", "example.com")]
    [InlineData("@scheme", "https")]
    [InlineData("@request-target", "/foo?param=Value&Pet=dog")]
    [InlineData("@path", "/foo")]
    [InlineData("@query", "?param=Value&Pet=dog")]
    [InlineData("content-length", "18")]
    public void Derives_the_components_of_the_test_request_as_RFC_9421_section_2_2_does(string name, string expected)
    {
        Assert.True(TestRequest().TryResolve(name, out var value, out var failure), failure);
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("http://EXAMPLE.com:80/", "@authority", "example.com")]
    [InlineData("http://127.0.0.1:8080/v1", "@authority", "127.0.0.1:8080")]
    [InlineData("http://example.com", "@path", "/")]
    [InlineData("http://example.com/x", "@query", "?")]
    [InlineData("http://example.com/x", "@request-target", "/x")]
    public void Derives_authority_path_and_query_by_the_RFC_rules(string uri, string name, string expected)
    {
        Assert.True(new SignatureComponents("GET", uri, _ => null).TryResolve(name, out var value, out _));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("@status")]
    [InlineData("@signature-params")]
    [InlineData("@query-param")]
    [InlineData("x-missing")]
    [InlineData("Content-Type")]
    [InlineData("")]
    public void Refuses_unsupported_or_missing_components(string name)
    {
        Assert.False(TestRequest().TryResolve(name, out _, out var failure));
        Assert.False(string.IsNullOrEmpty(failure));
    }

    [Fact]
    public void Refuses_a_component_value_with_a_line_break()
    {
        var message = new SignatureComponents("GET", "http://example.com/", _ => "a\nb");
        Assert.False(message.TryResolve("x-header", out _, out var failure));
        Assert.Contains("cannot be signed", failure);
    }

    [Fact]
    public void Trims_surrounding_whitespace_of_field_values()
    {
        var message = new SignatureComponents("GET", "http://example.com/", _ => " \tvalue \t");
        Assert.True(message.TryResolve("x-header", out var value, out _));
        Assert.Equal("value", value);
    }
}
