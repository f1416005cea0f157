using System.Formats.Tar;
using Atp.Core.Export;

namespace Atp.Core.Tests.Export;

/// <summary>The verifier's refusals of tar layouts a bundle never has (each would be unsafe to extract or ambiguous).</summary>
public sealed class BundleVerifierTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string, TarEntryType, string, string> Layouts => new()
    {
        { "../evil", TarEntryType.RegularFile, "../evil", "is not a safe relative member name" },
        { "/etc/passwd", TarEntryType.RegularFile, "/etc/passwd", "is not a safe relative member name" },
        { "entries/000000.ndjson", TarEntryType.SymbolicLink, "entries/000000.ndjson", "is a SymbolicLink entry; a bundle holds only regular files" },
        { "entries/", TarEntryType.Directory, "entries/", "is a Directory entry; a bundle holds only regular files" },
        { "manifest.json", TarEntryType.RegularFile, "manifest.json", "appears twice in the tar" },
        { "notes.txt", TarEntryType.RegularFile, "notes.txt", "is not a bundle member (hashes/000000.bin was expected here)" },
        { "entries/000001.ndjson", TarEntryType.RegularFile, "entries/000001.ndjson", "is out of place: hashes/000000.bin was expected here" },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Refuses_a_member_a_bundle_never_has(string name, TarEntryType type, string member, string reason)
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(5);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!, log.Scratch("staging"), log.Signer, path, None);

        // The intruder goes right after the checkpoint, where the first hashes file belongs.
        var members = await BundleWriterTests.ReadMembersAsync(path);
        var tampered = Path.Combine(log.Scratch("out"), "t.tar");
        await using (var stream = File.Create(tampered))
        await using (var tar = new TarWriter(stream, TarEntryFormat.Pax))
        {
            foreach (var (memberName, bytes) in members)
            {
                if (memberName.StartsWith("hashes/", StringComparison.Ordinal))
                {
                    var intruder = new PaxTarEntry(type, name);
                    if (type == TarEntryType.SymbolicLink)
                    {
                        intruder.LinkName = "/etc/passwd";
                    }
                    else if (type == TarEntryType.RegularFile)
                    {
                        intruder.DataStream = new MemoryStream("x\n"u8.ToArray());
                    }

                    await tar.WriteEntryAsync(intruder);
                }

                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, memberName) { DataStream = new MemoryStream(bytes) });
            }
        }

        await using var bundle = File.OpenRead(tampered);
        var result = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);

        Assert.False(result.IsValid);
        Assert.Equal(new BundleFailure(member, reason), result.Failure);
    }

    [Fact]
    public async Task Refuses_a_complete_bundle_without_its_hashes_files_even_when_signed()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(5);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        var manifest = await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!, log.Scratch("staging"), log.Signer, path, None);

        // The layout before hashes files existed, correctly signed: a reader must not take it for a complete bundle.
        var members = await BundleWriterTests.ReadMembersAsync(path);
        var stripped = manifest with { Files = [.. manifest.Files.Where(f => !f.Name.StartsWith("hashes/", StringComparison.Ordinal))] };
        members["manifest.json"] = stripped.ToUtf8Bytes();
        members["manifest.sig"] = Atp.Integrity.SignedNote.Sign(System.Text.Encoding.UTF8.GetString(members["manifest.json"]), log.Signer).ToUtf8Bytes();
        members.Remove("hashes/000000.bin");
        var tampered = Path.Combine(log.Scratch("out"), "t.tar");
        await using (var stream = File.Create(tampered))
        await using (var tar = new TarWriter(stream, TarEntryFormat.Ustar))
        {
            foreach (var (name, bytes) in members)
            {
                await tar.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
            }
        }

        await using var bundle = File.OpenRead(tampered);
        var result = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);

        Assert.Equal(new BundleFailure("manifest.json", "file 0 is 'entries/000000.ndjson', expected 'hashes/000000.bin'"), result.Failure);
    }

    [Fact]
    public async Task A_pax_bundle_with_the_same_members_verifies()
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(5);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!, log.Scratch("staging"), log.Signer, path, None);
        var pax = Path.Combine(log.Scratch("out"), "pax.tar");
        await using (var stream = File.Create(pax))
        await using (var tar = new TarWriter(stream, TarEntryFormat.Pax))
        {
            foreach (var (name, bytes) in await BundleWriterTests.ReadMembersAsync(path))
            {
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
            }
        }

        await using var bundle = File.OpenRead(pax);
        var result = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);

        Assert.True(result.IsValid, result.Failure?.ToString());
        Assert.True(result.KeyPinned);
    }

    // An entries file of several MiB is checked in 1 MiB batches on several threads; a changed entry must still be named
    // by its own line and index, and of two changed entries the first in the file, whichever batch finishes first.
    [Theory]
    [InlineData(new[] { 19_000 }, 19_000)]
    [InlineData(new[] { 100, 19_000 }, 100)]
    [InlineData(new[] { 8_000, 8_001, 19_999 }, 8_000)]
    public async Task Names_the_first_changed_entry_of_a_file_read_in_many_batches(int[] changedLines, int reported)
    {
        await using var log = await BundleLog.CreateAsync();
        await log.AppendAsync(20_000);
        await log.SealAsync();
        var writer = new BundleWriter(log.Store, log.Clock);
        var path = Path.Combine(log.Scratch("out"), "b.tar");
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!, log.Scratch("staging"), log.Signer, path, None);
        var members = await BundleWriterTests.ReadMembersAsync(path);
        var entries = members["entries/000000.ndjson"];
        Assert.True(entries.Length > 2 << 20, $"the entries file is {entries.Length} bytes, too small for several batches");

        await using (var intact = File.OpenRead(path))
        {
            var result = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(intact, null, null, None);
            Assert.True(result.IsValid, result.Failure?.ToString());
        }

        // Same size, one byte changed per chosen line (the 'l' of "user.login").
        var starts = new List<int> { 0 };
        for (var i = 0; i < entries.Length - 1; i++)
        {
            if (entries[i] == (byte)'\n')
            {
                starts.Add(i + 1);
            }
        }

        foreach (var line in changedLines)
        {
            var at = starts[line] + entries.AsSpan(starts[line]).IndexOf("user.login"u8) + 5;
            entries[at] = (byte)'L';
        }

        var tampered = Path.Combine(log.Scratch("out"), "t.tar");
        await using (var stream = File.Create(tampered))
        await using (var tar = new TarWriter(stream, TarEntryFormat.Ustar))
        {
            foreach (var (name, bytes) in members)
            {
                await tar.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
            }
        }

        await using var bundle = File.OpenRead(tampered);
        var failed = await new BundleVerifier([log.Signer.Verifier]).VerifyAsync(bundle, null, null, None);

        Assert.False(failed.IsValid);
        var failure = failed.Failure!;
        Assert.Equal(("entries/000000.ndjson", (ulong?)reported, (long?)reported + 1), (failure.Member, failure.Index, failure.Line));
        var listed = Convert.ToHexStringLower(members["hashes/000000.bin"].AsSpan(reported * 32, 32));
        Assert.EndsWith($"is not the listed {listed} (hashes/000000.bin)", failure.Reason, StringComparison.Ordinal);
    }
}
