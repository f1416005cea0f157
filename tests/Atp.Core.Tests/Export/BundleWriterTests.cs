using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Export;
using Atp.Integrity;

namespace Atp.Core.Tests.Export;

/// <summary>The bundle writer over a real SQLite store: what it writes, and how a job resumes after a crash.</summary>
public sealed class BundleWriterTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Writes_a_complete_bundle_ending_at_the_latest_checkpoint_with_the_exact_leaves()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(300);
        await log.SealAsync();
        await log.AppendAsync(50); // not yet sealed: not in the bundle
        var writer = new BundleWriter(log.Store, log.Clock);

        var plan = await writer.PlanCompleteAsync(BundleLog.TenantId, 100, null, 100, "job-1", None);
        Assert.NotNull(plan);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        var manifest = await writer.WriteAsync(plan, log.Scratch("staging"), log.Signer, path, None);

        var members = await ReadMembersAsync(path);
        Assert.Equal(["manifest.json", "manifest.sig", "checkpoint", "entries/000000.ndjson"], members.Keys);
        Assert.Equal(manifest.ToUtf8Bytes(), members["manifest.json"]);
        Assert.Equal((byte)'\n', members["manifest.json"][^1]);
        Assert.True(SignedNote.TryParse(members["manifest.sig"], out var note, out _));
        Assert.Equal(Encoding.UTF8.GetString(members["manifest.json"]), note.Text);
        Assert.True(note.Verify([log.Signer.Verifier], out _).IsValid);
        var stored = await log.Store.GetLatestCheckpointAsync(BundleLog.TenantId, None);
        Assert.Equal(stored!.Note, Encoding.UTF8.GetString(members["checkpoint"]));

        Assert.Equal((100UL, 300UL, 300UL, true, 200UL, "job-1"), (manifest.From, manifest.To, manifest.TreeSize, manifest.Complete, manifest.Events, manifest.ExportId));
        Assert.Equal($"{BundleLog.Origin}/{BundleLog.TenantId}", manifest.Origin);
        var file = Assert.Single(manifest.Files);
        var entries = members[file.Name];
        Assert.Equal((100UL, 200UL, (long)entries.Length), (file.FirstIndex, file.Count, file.Size));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(entries)), file.Sha256);

        var lines = Encoding.UTF8.GetString(entries).Split('\n');
        Assert.Equal(201, lines.Length);
        Assert.Equal(string.Empty, lines[^1]);
        var range = new CompactRange(manifest.From, [.. manifest.Edge.Select(Base64Hash)]);
        for (var i = 0; i < 200; i++)
        {
            var entry = await log.Store.GetEntryAsync(BundleLog.TenantId, 100 + (ulong)i, None);
            Assert.Equal(entry!.Leaf, Encoding.UTF8.GetBytes(lines[i]));
            range.Append(entry.LeafHash);
        }

        Assert.Equal(manifest.RootHash, range.Root().ToBase64());
        // The previous bundle ended where this one starts: its root is the edge folded.
        Assert.Equal(100UL, manifest.Previous!.TreeSize);
        Assert.Equal(manifest.Previous.RootHash, new CompactRange(100, [.. manifest.Edge.Select(Base64Hash)]).Root().ToBase64());
        Assert.True(ConsistencyProof.Verify(100, 300, [.. manifest.Previous.ConsistencyProof.Select(Base64Hash)], Base64Hash(manifest.Previous.RootHash), range.Root()).IsValid);
    }

    [Fact]
    public async Task A_resumed_job_keeps_complete_files_redoes_a_partial_one_and_packs_the_same_bundle()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(BundleManifest.MaxEntriesPerFile + 10);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var plan = await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None);
        Assert.NotNull(plan);
        Assert.Equal(2, plan.FileCount);
        var staging = log.Scratch("staging");

        await writer.WriteEntriesFileAsync(plan, 0, staging, None);
        var first = Path.Combine(staging, BundleManifest.EntriesFileName(0));
        var firstWritten = File.GetLastWriteTimeUtc(first);
        // A crash in the middle of file 1 left a torn temporary file behind.
        await File.WriteAllTextAsync(Path.Combine(staging, BundleManifest.EntriesFileName(1)) + ".partial", "{\"torn", None);
        Assert.Equal(1, BundleWriter.FirstUnwrittenFile(plan, staging));

        var path = Path.Combine(log.Scratch("out"), "b.tar");
        var manifest = await writer.WriteAsync(plan, staging, log.Signer, path, None);

        Assert.Equal(firstWritten, File.GetLastWriteTimeUtc(first));
        Assert.Equal(2, BundleWriter.FirstUnwrittenFile(plan, staging));
        Assert.Equal([(0UL, (ulong)BundleManifest.MaxEntriesPerFile), ((ulong)BundleManifest.MaxEntriesPerFile, 10UL)], manifest.Files.Select(f => (f.FirstIndex, f.Count)));
        Assert.Empty(manifest.Edge);
        Assert.Null(manifest.Previous);

        // Packing again from the same plan and staged files gives the same bytes: a restarted job's bundle is the same.
        var again = Path.Combine(log.Scratch("out2"), "b.tar");
        await writer.WriteAsync(plan, staging, log.Signer, again, None);
        var members = await ReadMembersAsync(path);
        var membersAgain = await ReadMembersAsync(again);
        Assert.Equal(members["manifest.json"], membersAgain["manifest.json"]);
        Assert.Equal(members["entries/000001.ndjson"], membersAgain["entries/000001.ndjson"]);

        await using var bundle = File.OpenRead(path);
        var verified = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);
        Assert.True(verified.IsValid, verified.Failure?.ToString());
        Assert.Equal(manifest.ToUtf8Bytes(), verified.Manifest!.ToUtf8Bytes());
    }

    [Fact]
    public async Task Writes_a_filtered_bundle_with_an_inclusion_proof_per_entry()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(40);
        await log.SealAsync();
        await log.AppendAsync(5);
        var writer = new BundleWriter(log.Store, log.Clock);
        using var filters = JsonDocument.Parse("{\"action\":\"user.login\"}");

        var plan = await writer.PlanFilteredAsync(BundleLog.TenantId, 0, 40, [1, 7, 39], filters.RootElement, null, null, None);
        Assert.NotNull(plan);
        var path = Path.Combine(log.Scratch("out"), "f.tar");
        var manifest = await writer.WriteAsync(plan, log.Scratch("staging"), log.Signer, path, None);

        Assert.False(manifest.Complete);
        Assert.Equal("user.login", manifest.Filters!.Value.GetProperty("action").GetString());
        Assert.Equal(["entries/000000.ndjson", "proofs/000000.ndjson"], manifest.Files.Select(f => f.Name));
        var members = await ReadMembersAsync(path);
        Assert.Equal(["manifest.json", "manifest.sig", "checkpoint", "entries/000000.ndjson", "proofs/000000.ndjson"], members.Keys);
        var leaves = Encoding.UTF8.GetString(members["entries/000000.ndjson"]).TrimEnd('\n').Split('\n');
        var proofs = Encoding.UTF8.GetString(members["proofs/000000.ndjson"]).TrimEnd('\n').Split('\n');
        Assert.Equal(3, leaves.Length);
        ulong[] indexes = [1, 7, 39];
        for (var i = 0; i < 3; i++)
        {
            using var proof = JsonDocument.Parse(proofs[i]);
            Assert.Equal(indexes[i], proof.RootElement.GetProperty("index").GetUInt64());
            Hash[] hashes = [.. proof.RootElement.GetProperty("hashes").EnumerateArray().Select(h => Base64Hash(h.GetString()!))];
            Assert.True(InclusionProof.Verify(indexes[i], 40, MerkleHasher.HashLeaf(Encoding.UTF8.GetBytes(leaves[i])), hashes, Base64Hash(manifest.RootHash)).IsValid);
        }
    }

    [Fact]
    public async Task Plans_nothing_when_no_stored_checkpoint_is_large_enough()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(10);
        var writer = new BundleWriter(log.Store, log.Clock);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None));

        await log.SealAsync();
        await log.AppendAsync(10);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 0, 11, null, null, None));
        Assert.Equal(10UL, (await writer.PlanCompleteAsync(BundleLog.TenantId, 0, 10, null, null, None))!.TreeSize);
        Assert.Null(await writer.PlanCompleteAsync(BundleLog.TenantId, 11, null, null, null, None));
    }

    internal static Hash Base64Hash(string base64) => Hash.TryParseBase64(base64, out var hash) ? hash : throw new FormatException(base64);

    internal static async Task<Dictionary<string, byte[]>> ReadMembersAsync(string path)
    {
        var members = new Dictionary<string, byte[]>();
        await using var stream = File.OpenRead(path);
        await using var tar = new TarReader(stream);
        while (await tar.GetNextEntryAsync() is { } entry)
        {
            using var copy = new MemoryStream();
            if (entry.DataStream is { } data)
            {
                await data.CopyToAsync(copy);
            }

            members.Add(entry.Name, copy.ToArray());
        }

        return members;
    }
}
