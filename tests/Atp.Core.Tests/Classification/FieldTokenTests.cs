using System.Security.Cryptography;
using System.Text;
using Atp.Core.Classification;

namespace Atp.Core.Tests.Classification;

public sealed class FieldTokenTests
{
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] Plaintext = Encoding.UTF8.GetBytes("\"Grace Hopper\"");

    private static string Seal(string pointer = "/actor/name") =>
        FieldToken.Seal(new DataKey("acme", "k1", Key, null), RandomNumberGenerator.GetBytes(FieldToken.NonceSize), pointer, Plaintext);

    // The same key bytes, as the tenant and key id a reader would take them for.
    private static bool Opens(string token, string tenant = "acme", string pointer = "/actor/name")
    {
        Assert.True(FieldToken.TryParse(token, out var keyId, out var sealedBytes));
        return FieldToken.TryOpen(new DataKey(tenant, keyId, Key, null), pointer, sealedBytes, out var plaintext) && plaintext.AsSpan().SequenceEqual(Plaintext);
    }

    [Fact]
    public void A_token_names_its_key_and_opens_to_the_canonical_value()
    {
        var token = Seal();

        Assert.StartsWith("atp:enc:v1:k1:", token, StringComparison.Ordinal);
        Assert.DoesNotContain("Grace", token, StringComparison.Ordinal);
        Assert.True(Opens(token));
    }

    [Fact]
    public void A_token_moved_to_another_field_or_tenant_does_not_open()
    {
        var token = Seal();

        Assert.False(Opens(token, pointer: "/context/ip"));
        Assert.False(Opens(token, tenant: "globex"));
    }

    [Fact]
    public void A_token_with_a_flipped_bit_or_another_key_id_does_not_open()
    {
        var token = Seal();
        var flipped = token[..^3] + (token[^3] == 'A' ? 'B' : 'A') + token[^2..];
        var renamed = token.Replace(":k1:", ":k2:", StringComparison.Ordinal);

        Assert.False(Opens(flipped));
        Assert.False(Opens(renamed));
    }

    [Theory]
    [InlineData("Grace Hopper")]
    [InlineData("atp:enc:v1:")]
    [InlineData("atp:enc:v1:k1")]
    [InlineData("atp:enc:v1::AAAA")]
    [InlineData("atp:enc:v1:k1:not base64!")]
    [InlineData("atp:enc:v1:k1:AAAA")]
    public void Strings_that_are_not_whole_tokens_do_not_parse(string value) =>
        Assert.False(FieldToken.TryParse(value, out _, out _));
}
