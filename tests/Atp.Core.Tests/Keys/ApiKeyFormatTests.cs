using Atp.Core.Keys;

namespace Atp.Core.Tests.Keys;

/// <summary>API key strings: atp_ + 43 base62 + 6 base62 checksum; only their SHA-256 is stored.</summary>
public sealed class ApiKeyFormatTests
{
    private const string Alphanumerics = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    [Fact]
    public void Has_the_documented_length_of_prefix_plus_43_plus_6_characters()
    {
        Assert.Equal("atp_", ApiKeyFormat.Prefix);
        Assert.Equal(4 + 43 + 6, ApiKeyFormat.Length);
    }

    [Fact]
    public void Generated_keys_are_well_formed_prefixed_base62_strings_of_the_documented_length()
    {
        for (var i = 0; i < 200; i++)
        {
            var key = ApiKeyFormat.Generate();

            Assert.StartsWith("atp_", key, StringComparison.Ordinal);
            Assert.Equal(ApiKeyFormat.Length, key.Length);
            Assert.All(key[4..], c => Assert.Contains(c, Alphanumerics));
            Assert.True(ApiKeyFormat.IsWellFormed(key), key);
        }
    }

    [Fact]
    public void Generated_keys_are_unique()
    {
        var keys = Enumerable.Range(0, 5_000).Select(_ => ApiKeyFormat.Generate()).ToList();

        Assert.Equal(keys.Count, keys.Distinct(StringComparer.Ordinal).Count());

        // 32 random bytes: no two keys share even their first 16 body characters.
        Assert.Equal(keys.Count, keys.Select(k => k.Substring(4, 16)).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Rejects_a_key_with_any_single_character_changed()
    {
        var key = ApiKeyFormat.Generate();
        var accepted = new List<string>();

        for (var position = ApiKeyFormat.Prefix.Length; position < key.Length; position++)
        {
            foreach (var replacement in Alphanumerics)
            {
                if (replacement == key[position])
                {
                    continue;
                }

                var changed = string.Concat(key.AsSpan(0, position), replacement.ToString(), key.AsSpan(position + 1));
                if (ApiKeyFormat.IsWellFormed(changed))
                {
                    accepted.Add(changed);
                }
            }
        }

        Assert.Empty(accepted);
    }

    [Fact]
    public void Rejects_two_swapped_adjacent_characters()
    {
        var key = ApiKeyFormat.Generate();
        var accepted = new List<string>();
        for (var i = ApiKeyFormat.Prefix.Length; i < key.Length - 1; i++)
        {
            if (key[i] == key[i + 1])
            {
                continue;
            }

            var chars = key.ToCharArray();
            (chars[i], chars[i + 1]) = (chars[i + 1], chars[i]);
            var swapped = new string(chars);
            if (ApiKeyFormat.IsWellFormed(swapped))
            {
                accepted.Add(swapped);
            }
        }

        Assert.Empty(accepted);
    }

    [Theory]
    [InlineData("atq_")]
    [InlineData("ATP_")]
    [InlineData("atp-")]
    [InlineData("xtp_")]
    public void Rejects_a_key_with_a_wrong_prefix(string prefix)
    {
        var key = ApiKeyFormat.Generate();

        Assert.False(ApiKeyFormat.IsWellFormed(prefix + key[4..]));
    }

    [Fact]
    public void Rejects_a_key_of_the_wrong_length()
    {
        var key = ApiKeyFormat.Generate();

        Assert.False(ApiKeyFormat.IsWellFormed(key[..^1]));
        Assert.False(ApiKeyFormat.IsWellFormed(key + "0"));
        Assert.False(ApiKeyFormat.IsWellFormed(key + key[^1]));
        Assert.False(ApiKeyFormat.IsWellFormed(key[1..]));
        Assert.False(ApiKeyFormat.IsWellFormed(key[4..]));
        Assert.False(ApiKeyFormat.IsWellFormed(" " + key));
        Assert.False(ApiKeyFormat.IsWellFormed(key + "\n"));
        Assert.False(ApiKeyFormat.IsWellFormed("atp_"));
        Assert.False(ApiKeyFormat.IsWellFormed(""));
        Assert.False(ApiKeyFormat.IsWellFormed(null));
    }

    [Theory]
    [InlineData('-')]
    [InlineData('_')]
    [InlineData('+')]
    [InlineData('/')]
    [InlineData('=')]
    [InlineData(' ')]
    [InlineData('é')]
    [InlineData('\u0663')] // ARABIC-INDIC DIGIT THREE: a digit, but not an ASCII one
    [InlineData('\uff21')] // FULLWIDTH LATIN CAPITAL LETTER A
    public void Rejects_a_key_with_a_non_alphanumeric_character(char c)
    {
        var key = ApiKeyFormat.Generate();

        foreach (var position in new[] { 4, 20, ApiKeyFormat.Length - 7, ApiKeyFormat.Length - 1 })
        {
            var changed = string.Concat(key.AsSpan(0, position), c.ToString(), key.AsSpan(position + 1));
            Assert.Equal(key.Length, changed.Length);
            Assert.False(ApiKeyFormat.IsWellFormed(changed), $"accepted '{c}' at {position}");
        }
    }

    [Fact]
    public void Hash_is_sha256_of_the_ascii_key()
    {
        // Reference values from `printf %s <key> | sha256sum`.
        Assert.Equal(
            Convert.FromHexString("a57d9e85ac4e8c535bfda10fa56e7fc7b7434b21e393f44f5b52d5c75aca0807"),
            ApiKeyFormat.Hash("atp_test"));
        Assert.Equal(
            Convert.FromHexString("884ca417ee0cb1206ddfb557413f1e7c7619021f0222ffb60ca11309b8e6c4a2"),
            ApiKeyFormat.Hash("atp_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghij"));
    }

    [Fact]
    public void Different_keys_have_different_32_byte_hashes()
    {
        var a = ApiKeyFormat.Generate();
        var b = ApiKeyFormat.Generate();

        Assert.Equal(32, ApiKeyFormat.Hash(a).Length);
        Assert.Equal(ApiKeyFormat.Hash(a), ApiKeyFormat.Hash(a));
        Assert.NotEqual(ApiKeyFormat.Hash(a), ApiKeyFormat.Hash(b));
    }
}
