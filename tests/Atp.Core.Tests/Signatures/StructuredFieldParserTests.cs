using Atp.Core.Signatures;

namespace Atp.Core.Tests.Signatures;

/// <summary>The strict RFC 8941 dictionary parser behind Signature-Input, Signature and Content-Digest.</summary>
public sealed class StructuredFieldParserTests
{
    private static IReadOnlyList<SfMember> Parse(string text)
    {
        Assert.True(StructuredFieldParser.TryParseDictionary(text, out var members, out var failure), failure);
        return members;
    }

    [Fact]
    public void Parses_an_inner_list_of_strings_with_parameters_and_keeps_the_member_text()
    {
        var member = Assert.Single(Parse("atp=(\"@method\" \"@target-uri\");created=1618884473;nonce=\"b3k2pp5k7z\";keyid=\"key_0123456789abcdef\";alg=\"hmac-sha256\""));

        Assert.Equal("atp", member.Key);
        Assert.Equal(new[] { "@method", "@target-uri" }, member.InnerList!.Select(i => i.Value.Text));
        Assert.All(member.InnerList!, i => Assert.Equal(SfKind.String, i.Value.Kind));
        Assert.Equal(1618884473, member.Parameter("created")!.Value.Integer);
        Assert.Equal("b3k2pp5k7z", member.Parameter("nonce")!.Value.Text);
        Assert.Equal("hmac-sha256", member.Parameter("alg")!.Value.Text);
        Assert.Null(member.Parameter("expires"));
        Assert.Equal("(\"@method\" \"@target-uri\");created=1618884473;nonce=\"b3k2pp5k7z\";keyid=\"key_0123456789abcdef\";alg=\"hmac-sha256\"", member.RawValue);
    }

    [Fact]
    public void Parses_every_bare_item_type()
    {
        var members = Parse("i=-42, s=\"a \\\"q\\\" \\\\ b\", t=foo/bar:baz*, b=:AQID:, e=::, y=?1, n=?0, flag;p, l=(1 tok ?0 :AA==:);x=1");

        Assert.Equal(new SfItem(SfKind.Integer, Integer: -42), members[0].Item);
        Assert.Equal("a \"q\" \\ b", members[1].Item!.Value.Text);
        Assert.Equal((SfKind.Token, "foo/bar:baz*"), (members[2].Item!.Value.Kind, members[2].Item!.Value.Text));
        Assert.Equal(new byte[] { 1, 2, 3 }, members[3].Item!.Value.Bytes);
        Assert.Empty(members[4].Item!.Value.Bytes!);
        Assert.True(members[5].Item!.Value.Boolean);
        Assert.False(members[6].Item!.Value.Boolean);
        Assert.True(members[7].Item!.Value.Boolean);
        Assert.Equal(";p", members[7].RawValue);
        Assert.True(members[7].Parameter("p")!.Value.Boolean);
        Assert.Equal(new[] { SfKind.Integer, SfKind.Token, SfKind.Boolean, SfKind.ByteSequence }, members[8].InnerList!.Select(i => i.Value.Kind));
        Assert.Equal("(1 tok ?0 :AA==:);x=1", members[8].RawValue);
    }

    [Theory]
    [InlineData("a=1,b=2")]
    [InlineData("a=1, b=2")]
    [InlineData("  a=1 ,\t b=2  ")]
    [InlineData("b=2, a=1")]
    [InlineData("a=1, b=2, other=(\"x\");created=5")]
    public void Accepts_optional_whitespace_and_any_member_order(string text)
    {
        var members = Parse(text);
        Assert.Equal(1, StructuredFieldParser.Find(members, "a")!.Item!.Value.Integer);
        Assert.Equal(2, StructuredFieldParser.Find(members, "b")!.Item!.Value.Integer);
    }

    [Fact]
    public void Accepts_extra_spaces_inside_inner_lists_and_keeps_them_in_the_member_text()
    {
        var member = Assert.Single(Parse("sig=(  \"a\"   \"b\" );k=1"));
        Assert.Equal(new[] { "a", "b" }, member.InnerList!.Select(i => i.Value.Text));
        Assert.Equal("(  \"a\"   \"b\" );k=1", member.RawValue);
    }

    [Fact]
    public void An_empty_value_is_an_empty_dictionary()
    {
        Assert.Empty(Parse(""));
        Assert.Empty(Parse("   "));
    }

    [Theory]
    [InlineData("A=1", "expected a key")]
    [InlineData("1a=1", "expected a key")]
    [InlineData("a=1,", "trailing comma")]
    [InlineData("a=1,,b=2", "expected a key")]
    [InlineData("a=1 b=2", "expected ','")]
    [InlineData("a=1;", "expected a key")]
    [InlineData("a=1, a=2", "duplicate key")]
    [InlineData("a=1;p=1;p=2", "duplicate parameter")]
    [InlineData("a=", "unexpected end")]
    [InlineData("a=(\"x\"", "unterminated inner list")]
    [InlineData("a=(\"x\"\"y\")", "expected ' ' or ')'")]
    [InlineData("a=\"abc", "unterminated string")]
    [InlineData("a=\"a\\nb\"", "invalid escape")]
    [InlineData("a=\"a\tb\"", "invalid character in a string")]
    [InlineData("a=:AQID", "unterminated byte sequence")]
    [InlineData("a=:AQI:", "not padded base64")]
    [InlineData("a=:A-_=:", "invalid character in a byte sequence")]
    [InlineData("a=?2", "?0 or ?1")]
    [InlineData("a=1.5", "decimals")]
    [InlineData("a=-", "expected a digit")]
    [InlineData("a=1234567890123456", "15 digits")]
    [InlineData("a=@x", "unexpected character")]
    [InlineData("a=\"é\"", "printable ASCII")]
    [InlineData("a=\"x\r\ny\"", "printable ASCII")]
    public void Refuses_malformed_input_with_a_reason_and_no_exception(string text, string reason)
    {
        Assert.False(StructuredFieldParser.TryParseDictionary(text, out var members, out var failure));
        Assert.Null(members);
        Assert.Contains(reason, failure);
    }

    [Fact]
    public void Refuses_a_missing_value()
    {
        Assert.False(StructuredFieldParser.TryParseDictionary(null, out _, out var failure));
        Assert.Equal("missing", failure);
    }

    [Fact]
    public void Bounds_the_header_length()
    {
        var atLimit = "a=\"" + new string('x', StructuredFieldParser.MaxLength - 4) + "\"";
        Assert.Equal(StructuredFieldParser.MaxLength, atLimit.Length);
        Assert.True(StructuredFieldParser.TryParseDictionary(atLimit, out _, out _));

        Assert.False(StructuredFieldParser.TryParseDictionary(atLimit + " ", out _, out var failure));
        Assert.Contains("longer than", failure);
    }

    [Fact]
    public void Bounds_the_number_of_members_items_and_parameters()
    {
        string Members(int n) => string.Join(", ", Enumerable.Range(0, n).Select(i => $"k{i}=1"));
        string Items(int n) => "a=(" + string.Join(' ', Enumerable.Range(0, n).Select(i => $"\"c{i}\"")) + ")";
        string Parameters(int n) => "a=1" + string.Concat(Enumerable.Range(0, n).Select(i => $";p{i}=1"));

        foreach (var (build, reason) in new (Func<int, string>, string)[] { (Members, "members"), (Items, "items"), (Parameters, "parameters") })
        {
            Assert.True(StructuredFieldParser.TryParseDictionary(build(StructuredFieldParser.MaxCount), out _, out var failure), failure);
            Assert.False(StructuredFieldParser.TryParseDictionary(build(StructuredFieldParser.MaxCount + 1), out _, out failure));
            Assert.Contains(reason, failure);
        }
    }
}
