using System.Text;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Cli.Tests;

/// <summary>
/// A small signed log written to a temporary directory the way a user would save server responses: checkpoints as
/// signed-note files, leaves as exact bytes, proofs as JSON.
/// </summary>
internal sealed class LogFixture : IDisposable
{
    public const string Origin = "atp.example.com/test-cell-1/acme";

    private readonly CompactRange _range = new();
    private readonly MemoryNodeStore _store = new();
    private readonly List<byte[]> _leaves = [];

    public LogFixture(int size, string contentSalt = "", NoteSigner? signer = null)
        : this(Enumerable.Range(0, size).Select(i => Encoding.UTF8.GetBytes($"{{\"action\":\"document.update\",\"index\":{i},\"salt\":\"{contentSalt}\"}}")), signer)
    {
    }

    /// <summary>A log whose entries are the JCS canonical forms of the given JSON texts, in order.</summary>
    public LogFixture(IEnumerable<byte[]> entries, NoteSigner? signer = null)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("atp-cli-").FullName;
        Signer = signer ?? NoteSigner.Generate("atp.example.com/test-cell-1");
        var completed = new List<MerkleNode>();
        foreach (var entry in entries)
        {
            var leaf = JsonCanonicalizer.Canonicalize(entry);
            _leaves.Add(leaf);
            completed.Clear();
            _range.Append(MerkleHasher.HashLeaf(leaf), completed);
            completed.ForEach(_store.Add);
        }
    }

    public string Directory { get; }

    public NoteSigner Signer { get; }

    public string VerifierKey => Signer.Verifier.VerifierKey;

    public ProofBuilder Proofs => new(_store);

    public async Task<string> WriteCheckpointAsync(ulong size, string? origin = null, NoteSigner? signer = null) =>
        Write($"checkpoint-{size}-{Guid.NewGuid():n}.txt", (await SignCheckpointAsync(size, origin, signer)).ToUtf8Bytes());

    /// <summary>The signed checkpoint of the first <paramref name="size"/> entries.</summary>
    public async Task<SignedNote> SignCheckpointAsync(ulong size, string? origin = null, NoteSigner? signer = null)
    {
        var root = await Proofs.RootAsync(size, CancellationToken.None);
        return new Checkpoint(origin ?? Origin, size, root).Sign(signer ?? Signer);
    }

    public byte[] Leaf(int index) => _leaves[index];

    public string WriteLeaf(int index) => Write($"leaf-{index}.bin", Leaf(index));

    public async Task<string> WriteInclusionProofAsync(ulong index, ulong size)
    {
        var hashes = await Proofs.InclusionProofAsync(index, size, CancellationToken.None);
        return WriteJson(new { index, treeSize = size, hashes = hashes.Select(h => h.ToBase64()) });
    }

    public async Task<string> WriteConsistencyProofAsync(ulong from, ulong to)
    {
        var hashes = await Proofs.ConsistencyProofAsync(from, to, CancellationToken.None);
        return WriteJson(new { from, to, hashes = hashes.Select(h => h.ToBase64()) });
    }

    public string WriteJson(object value) => Write($"proof-{Guid.NewGuid():n}.json", JsonSerializer.SerializeToUtf8Bytes(value));

    public string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        Signer.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
