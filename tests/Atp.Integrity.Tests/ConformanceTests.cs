using System.Text.Json;

namespace Atp.Integrity.Tests;

/// <summary>The transparency-dev/merkle JSON proof cases (TestData/tlog): the verifier must agree with wantErr on each.</summary>
public sealed class ConformanceTests
{
    public static TheoryData<string> InclusionCases() => Cases("inclusion");

    public static TheoryData<string> ConsistencyCases() => Cases("consistency");

    [Fact]
    public void All_196_upstream_cases_are_present()
    {
        Assert.Equal(196, InclusionCases().Count + ConsistencyCases().Count);
    }

    [Theory]
    [MemberData(nameof(InclusionCases))]
    public void Inclusion_verifier_agrees_with_wantErr(string file)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.TlogDirectory, file)));
        var c = json.RootElement;
        var result = InclusionProof.Verify(
            c.GetProperty("leafIdx").GetUInt64(),
            c.GetProperty("treeSize").GetUInt64(),
            Bytes(c, "leafHash"),
            Proof(c),
            Bytes(c, "root"));

        Assert.True(result.IsValid != c.GetProperty("wantErr").GetBoolean(), $"{c.GetProperty("desc").GetString()}: {result}");
    }

    [Theory]
    [MemberData(nameof(ConsistencyCases))]
    public void Consistency_verifier_agrees_with_wantErr(string file)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.TlogDirectory, file)));
        var c = json.RootElement;
        var result = ConsistencyProof.Verify(
            c.GetProperty("size1").GetUInt64(),
            c.GetProperty("size2").GetUInt64(),
            Proof(c),
            Bytes(c, "root1"),
            Bytes(c, "root2"));

        Assert.True(result.IsValid != c.GetProperty("wantErr").GetBoolean(), $"{c.GetProperty("desc").GetString()}: {result}");
    }

    private static TheoryData<string> Cases(string kind)
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(TestData.TlogDirectory, kind), "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(TestData.TlogDirectory, file));
        }

        return data;
    }

    private static byte[] Bytes(JsonElement c, string name) =>
        c.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? Convert.FromBase64String(value.GetString()!) : [];

    private static List<byte[]> Proof(JsonElement c) =>
        c.TryGetProperty("proof", out var proof) && proof.ValueKind == JsonValueKind.Array
            ? proof.EnumerateArray().Select(h => Convert.FromBase64String(h.GetString()!)).ToList()
            : [];
}
