namespace Atp.Integrity.Tests;

/// <summary>The RFC 6962 8-leaf example tree (TestData/tlog/VECTORS.md §1–4).</summary>
public sealed class Rfc6962ExampleTests
{
    private static readonly string[] LeafInputs = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

    private static readonly string[] Roots =
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    // Hashes named as in VECTORS.md: leaves L0..L7 and interior nodes "level:index".
    private static readonly Dictionary<string, string> Node = new()
    {
        ["L0"] = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        ["L1"] = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        ["L2"] = "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        ["L3"] = "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        ["L4"] = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ["L5"] = "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        ["L6"] = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        ["L7"] = "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ["1:0"] = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        ["1:1"] = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        ["1:2"] = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        ["1:3"] = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ["2:0"] = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ["2:1"] = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ["3:0"] = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ["x"] = "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e",
    };

    public static TheoryData<ulong, ulong, string[]> InclusionVectors => new()
    {
        { 0, 1, [] },
        { 0, 8, ["L1", "1:1", "2:1"] },
        { 5, 8, ["L4", "1:3", "2:0"] },
        { 2, 3, ["1:0"] },
        { 1, 5, ["L0", "1:1", "L4"] },
        { 3, 8, ["L2", "1:0", "2:1"] },
        { 6, 7, ["1:2", "2:0"] },
    };

    public static TheoryData<ulong, ulong, string[]> ConsistencyVectors => new()
    {
        { 1, 1, [] },
        { 1, 8, ["L1", "1:1", "2:1"] },
        { 6, 8, ["1:2", "1:3", "2:0"] },
        { 2, 5, ["1:1", "L4"] },
        { 6, 7, ["1:2", "L6", "2:0"] },
        { 4, 8, ["2:1"] },
        { 3, 7, ["L2", "L3", "1:0", "x"] },
    };

    [Fact]
    public void Hasher_matches_rfc6962_vectors()
    {
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", MerkleHasher.EmptyRoot.ToHex());
        Assert.Equal("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", MerkleHasher.HashLeaf([]).ToHex());
        Assert.Equal("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", MerkleHasher.HashLeaf("L123456"u8).ToHex());
        var n123 = "N123"u8.ToArray();
        var n456 = "N456"u8.ToArray();
        var expected = Hash.Sha256([0x01, .. n123, .. n456]);
        Assert.Equal("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb", expected.ToHex());
    }

    [Fact]
    public void Leaf_hashes_match()
    {
        for (var i = 0; i < LeafInputs.Length; i++)
        {
            Assert.Equal(Node[$"L{i}"], MerkleHasher.HashLeaf(Convert.FromHexString(LeafInputs[i])).ToHex());
        }
    }

    [Fact]
    public void Every_root_for_sizes_0_to_8_matches()
    {
        var tree = Tree();
        Assert.Equal(Roots, tree.Roots.Select(r => r.ToHex()));
    }

    [Fact]
    public async Task Historical_roots_are_rebuilt_from_stored_nodes()
    {
        var tree = Tree();
        for (var size = 0UL; size <= 8; size++)
        {
            Assert.Equal(Roots[size], (await tree.Proofs.RootAsync(size, CancellationToken.None)).ToHex());
        }
    }

    [Fact]
    public async Task Stored_interior_nodes_match()
    {
        var tree = Tree();
        foreach (var (name, hex) in Node.Where(n => n.Key.Contains(':')))
        {
            var parts = name.Split(':');
            var id = new NodeId(int.Parse(parts[0]), ulong.Parse(parts[1]));
            var hashes = new Hash[1];
            await tree.Store.ReadNodesAsync(new[] { id }, hashes, CancellationToken.None);
            Assert.Equal(hex, hashes[0].ToHex());
        }
    }

    [Theory]
    [MemberData(nameof(InclusionVectors))]
    public async Task Inclusion_proof_matches_and_verifies(ulong index, ulong size, string[] expected)
    {
        var tree = Tree();
        var proof = await tree.Proofs.InclusionProofAsync(index, size, CancellationToken.None);
        Assert.Equal(expected.Select(n => Node[n]), proof.Select(h => h.ToHex()));
        Assert.Equal(expected.Length, InclusionProof.ExpectedLength(index, size));
        var leaf = Hash.FromHex(Node[$"L{index}"]);
        Assert.True(InclusionProof.Verify(index, size, leaf, proof, Hash.FromHex(Roots[size])).IsValid);
    }

    [Theory]
    [MemberData(nameof(ConsistencyVectors))]
    public async Task Consistency_proof_matches_and_verifies(ulong from, ulong to, string[] expected)
    {
        var tree = Tree();
        var proof = await tree.Proofs.ConsistencyProofAsync(from, to, CancellationToken.None);
        Assert.Equal(expected.Select(n => Node[n]), proof.Select(h => h.ToHex()));
        Assert.True(ConsistencyProof.Verify(from, to, proof, Hash.FromHex(Roots[from]), Hash.FromHex(Roots[to])).IsValid);
    }

    private static TreeFixture Tree() => TreeFixture.WithLeaves(LeafInputs.Select(Convert.FromHexString));
}

/// <summary>The hot-path SHA-256 (OpenSSL low-level API where available) must agree with .NET's SHA-256 everywhere.</summary>
public sealed class Sha256EngineTests
{
    [Fact]
    public void Leaf_and_node_hashes_agree_with_the_framework_sha256_for_every_length()
    {
        var random = new Random(11);
        for (var length = 0; length < 1200; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData([0x00, .. data]), MerkleHasher.HashLeaf(data).ToArray());
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), Hash.Sha256(data).ToArray());
        }

        var left = Hash.Sha256("l"u8);
        var right = Hash.Sha256("r"u8);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData([0x01, .. left.ToArray(), .. right.ToArray()]), MerkleHasher.HashChildren(left, right).ToArray());
    }

    [Fact]
    public void The_fast_path_is_active_on_linux()
    {
        // .NET itself needs libcrypto.so.3 on Linux, so losing the fast path means a broken self-test, not a missing library.
        Assert.Equal(OperatingSystem.IsLinux(), Sha256Engine.IsNative);
    }
}
