using System.Text;

namespace Atp.Integrity.Tests;

/// <summary>C2SP tlog-checkpoint (VECTORS.md §8, derived).</summary>
public sealed class CheckpointTests
{
    private const string Origin = "example.com/audit/test-log";
    private const string Verifier = "example.com/audit/test-log+7771c18d+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
    private const string Signed = "example.com/audit/test-log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n— example.com/audit/test-log d3HBjeCm4ULwoSABBLH0iXmSigtu9nwUABMi08cZy1s67lrmWAnX/Mc9u7XdZO1LsYJyOojCJ+vVG2NdRCq/bjBWcAs=\n";

    [Fact]
    public void Signing_the_8_leaf_checkpoint_reproduces_the_vector()
    {
        using var signer = NoteSigner.FromSeed(Origin, Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
        Assert.Equal(Verifier, signer.Verifier.VerifierKey);
        var checkpoint = new Checkpoint(Origin, 8, Hash.FromHex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"));
        Assert.Equal(Signed, checkpoint.Sign(signer).ToString());
    }

    [Fact]
    public void Opens_a_signed_checkpoint_with_a_trusted_key()
    {
        var result = Checkpoint.Open(Encoding.UTF8.GetBytes(Signed), [NoteVerifier.Parse(Verifier)], out var checkpoint);
        Assert.True(result.IsValid, result.Failure);
        Assert.Equal(Origin, checkpoint!.Origin);
        Assert.Equal(8UL, checkpoint.Size);
        Assert.Equal("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", checkpoint.Root.ToBase64());
    }

    [Fact]
    public void A_checkpoint_with_a_cosignature_from_an_unknown_witness_still_opens()
    {
        var cosigned = Signed + "— witness.example.com/w1 iGoEgQAAAABlU/EAA79insLyGOig7895unARV8yo/hWEgwEKDeikXyIzwz5vFjHWYtsyJtZEyZLLzqWNthTLD9VzvXo2KJrtl1USDA==\n";
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(cosigned), [NoteVerifier.Parse(Verifier)], out _).IsValid);
    }

    [Fact]
    public void A_tampered_checkpoint_is_not_returned()
    {
        var tampered = Signed.Replace("\n8\n", "\n9\n", StringComparison.Ordinal);
        var result = Checkpoint.Open(Encoding.UTF8.GetBytes(tampered), [NoteVerifier.Parse(Verifier)], out var checkpoint);
        Assert.False(result.IsValid);
        Assert.Null(checkpoint);
    }

    [Fact]
    public void Extension_lines_are_preserved()
    {
        using var signer = NoteSigner.Generate("k");
        var checkpoint = new Checkpoint("atp.example/cell/acme", 3, MerkleHasher.EmptyRoot, ["time 1700000000", "x y"]);
        var text = checkpoint.Sign(signer).ToString();
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(text), [signer.Verifier], out var opened).IsValid);
        Assert.Equal(["time 1700000000", "x y"], opened!.Extensions);
        Assert.Equal(checkpoint.ToNoteText(), opened.ToNoteText());
    }

    [Theory]
    [InlineData("origin\n8\n")]
    [InlineData("\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")]
    [InlineData("origin\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")]
    [InlineData("origin\n-8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")]
    [InlineData("origin\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")]
    [InlineData("origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQy=\n")]
    [InlineData("origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n")]
    [InlineData("origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\nextension after blank\n")]
    [InlineData("origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")]
    public void Rejects_malformed_checkpoint_text(string text)
    {
        Assert.False(Checkpoint.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
    }
}
