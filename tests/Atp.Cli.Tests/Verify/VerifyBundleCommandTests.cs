using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atp.Core.Export;
using Atp.Core.Tests.Export;

namespace Atp.Cli.Tests;

/// <summary><c>atp verify bundle</c> over bundles written by the real writer from a real SQLite store.</summary>
public sealed class VerifyBundleCommandTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private BundleLog? _log;
    private string _first = string.Empty;
    private string _second = string.Empty;

    private BundleLog Log => _log ?? throw new InvalidOperationException("no log");

    private string Key => Log.Signer.Verifier.VerifierKey;

    public async Task InitializeAsync()
    {
        _log = await BundleLog.CreateAsync();
        await Log.AppendAsync(10);
        await Log.SealAsync();
        await Log.AppendAsync(30);
        await Log.SealAsync();
        var writer = new BundleWriter(Log.Store, Log.Clock);
        _first = Path.Combine(Log.Scratch("out"), "day1.tar");
        _second = Path.Combine(Log.Scratch("out"), "day2.tar");
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, 10, null, null, None))!, Log.Scratch("s1"), Log.Signer, _first, None);
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 10, 40, 10, null, None))!, Log.Scratch("s2"), Log.Signer, _second, None);
    }

    public async Task DisposeAsync()
    {
        if (_log is not null)
        {
            await _log.DisposeAsync();
        }
    }

    [Fact]
    public async Task Verifies_a_bundle_against_a_pinned_key_and_its_previous_bundle()
    {
        var result = await CliRun.InProcessAsync("verify", "bundle", _second, "--key", Key, "--previous", _first);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("verified: bundle of tenant acme (atp.test/local/acme), entries [10, 40): 30 events in 1 files, checkpoint of size 40", result.Output, StringComparison.Ordinal);
        Assert.Contains($"signed by {Key} (pinned with --key)", result.Output, StringComparison.Ordinal);
        Assert.Contains("complete: every entry", result.Output, StringComparison.Ordinal);
        Assert.Contains("previous: consistent with the checkpoint of size 10", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_key_verifies_against_the_bundles_own_key_and_says_it_was_not_pinned()
    {
        var result = await CliRun.InProcessAsync("verify", "bundle", _first);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains($"key NOT pinned: verified against the key the bundle itself names, {Key}", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refuses_a_bundle_signed_by_another_key()
    {
        using var other = Atp.Integrity.NoteSigner.Generate(BundleLog.Origin);

        var result = await CliRun.InProcessAsync("verify", "bundle", _first, "--key", other.Verifier.VerifierKey);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("FAILED: manifest.sig: the manifest signature does not verify", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refuses_a_previous_bundle_that_is_not_the_one_this_bundle_continues()
    {
        // day1 names no previous checkpoint; day2 is not day1's predecessor.
        var reversed = await CliRun.InProcessAsync("verify", "bundle", _first, "--key", Key, "--previous", _second);
        var self = await CliRun.InProcessAsync("verify", "bundle", _second, "--key", Key, "--previous", _second);

        Assert.Equal(1, reversed.ExitCode);
        Assert.Contains("manifest.json: names no previous checkpoint", reversed.Error, StringComparison.Ordinal);
        Assert.Equal(1, self.ExitCode);
        Assert.Contains("manifest.json: the previous checkpoint (size 10) is not the previous bundle's (size 40)", self.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_without_a_key_pins_the_first_bundles_key_and_refuses_another()
    {
        var offline = Log.Scratch("offline");
        await using var other = await BundleLog.CreateAsync();
        await other.AppendAsync(12);
        await other.SealAsync();
        var stranger = Path.Combine(other.Scratch("out"), "other.tar");
        var writer = new BundleWriter(other.Store, other.Clock);
        await writer.WriteAsync((await writer.PlanCompleteAsync(BundleLog.TenantId, 0, null, null, null, None))!, other.Scratch("staging"), other.Signer, stranger, None);

        var first = await CliRun.InProcessAsync("import", _first, "--data", offline);
        var second = await CliRun.InProcessAsync("import", _second, "--data", offline);
        var foreign = await CliRun.InProcessAsync("import", stranger, "--data", offline);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Contains($"key NOT pinned: trusting the key the bundle names, {Key}", first.Output, StringComparison.Ordinal);
        Assert.Contains("imported 10 entries: replica tenant acme", first.Output, StringComparison.Ordinal);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains($"key: signed by {Key}, the source key recorded at the first import", second.Output, StringComparison.Ordinal);
        Assert.Contains("imported 30 entries", second.Output, StringComparison.Ordinal);
        Assert.Equal(1, foreign.ExitCode);
        Assert.StartsWith($"REFUSED: the bundle is signed by {other.Signer.Verifier.VerifierKey}, not by the source key(s) recorded for replica acme", foreign.Error, StringComparison.Ordinal);
        Assert.Equal([Key], (await File.ReadAllLinesAsync(ReplicaKeys.PathOf(offline, BundleLog.TenantId))).ToList());
    }

    [Fact]
    public async Task A_missing_file_is_unusable_input()
    {
        var result = await CliRun.InProcessAsync("verify", "bundle", Path.Combine(Log.Scratch("none"), "missing.tar"), "--key", Key);

        Assert.Equal(ExitCodes.BadInput, result.ExitCode);
        Assert.Contains("cannot open the bundle", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_filtered_bundle_verifies_each_entry_by_its_proof_and_says_it_cannot_prove_completeness()
    {
        var writer = new BundleWriter(Log.Store, Log.Clock);
        using var filters = JsonDocument.Parse("{\"action\":\"user.login\"}");
        var path = Path.Combine(Log.Scratch("out"), "filtered.tar");
        await writer.WriteAsync((await writer.PlanFilteredAsync(BundleLog.TenantId, 0, 40, [2, 3, 17, 39], filters.RootElement, null, null, None))!, Log.Scratch("s3"), Log.Signer, path, None);

        var result = await CliRun.InProcessAsync("verify", "bundle", path, "--key", Key);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("filtered: holds only the entries matching {\"action\":\"user.login\"}", result.Output, StringComparison.Ordinal);
        Assert.Contains("cannot prove completeness", result.Output, StringComparison.Ordinal);

        // Swapping two entry lines keeps every count and, once re-signed, every digest: only the proofs catch it.
        var failure = await VerifyRewrittenAsync(path, members =>
        {
            var lines = Encoding.UTF8.GetString(members["entries/000000.ndjson"]).Split('\n');
            (lines[1], lines[2]) = (lines[2], lines[1]);
            members["entries/000000.ndjson"] = Encoding.UTF8.GetBytes(string.Join('\n', lines));
        });
        Assert.StartsWith("entries/000000.ndjson, line 2 (index 3): the entry is not in the tree of size 40: its inclusion proof (proofs/000000.ndjson) does not verify", failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_complete_bundle_names_the_line_where_the_entries_stop_matching_the_manifest()
    {
        // An extra line (the file re-signed so only the count is wrong).
        var failure = await VerifyRewrittenAsync(_second, members =>
            members["entries/000000.ndjson"] = [.. members["entries/000000.ndjson"], .. "{\"x\":1}\n"u8]);

        Assert.Equal("entries/000000.ndjson, line 31 (index 40): holds more than the 30 entries the manifest lists", failure);
    }

    /// <summary>
    /// Flips one byte at every position of the bundle's tar headers, padding and end marker, of the manifest, signature
    /// and checkpoint, and of every third byte of the entries: every flip must fail verification naming the damaged
    /// member (or the tar framing), except in bytes listed in <see cref="UnusedBytes"/> (none), which would have to
    /// leave the verified content as it was.
    /// </summary>
    [Fact]
    public async Task Flipping_any_single_byte_fails_verification_naming_what_failed()
    {
        var original = await File.ReadAllBytesAsync(_second);
        var layout = TarLayout.Read(original);
        var clean = await CliRun.InProcessAsync("verify", "bundle", _second, "--key", Key, "--previous", _first);
        Assert.Equal(0, clean.ExitCode);
        var unused = UnusedBytes(layout, original.Length);
        var damaged = Path.Combine(Log.Scratch("flip"), "damaged.tar");
        var tried = 0;
        var stillVerified = new List<int>();
        foreach (var (position, member) in Positions(layout, original.Length))
        {
            var copy = (byte[])original.Clone();
            copy[position] ^= 0x01;
            await File.WriteAllBytesAsync(damaged, copy);
            var result = await CliRun.InProcessAsync("verify", "bundle", damaged, "--key", Key, "--previous", _first);
            tried++;
            if (result.ExitCode == 0)
            {
                stillVerified.Add(position);
                if (Environment.GetEnvironmentVariable("ATP_FLIP_DISCOVER") is not null)
                {
                    Console.Error.WriteLine($"DISCOVER {member} {position - layout.Members.Select(m => m.HeaderOffset).Where(o => o <= position).Max()}");
                    continue;
                }

                Assert.True(unused.Contains(position), $"flipping byte {position} ({member}) still verifies");
                Assert.Equal(WithoutTiming(clean.Output), WithoutTiming(result.Output));
                continue;
            }

            Assert.True(result.ExitCode == 1, $"byte {position} ({member}): exit {result.ExitCode} {result.Error}");
            Assert.StartsWith("FAILED: ", result.Error, StringComparison.Ordinal);
            Assert.True(
                // A data byte names its member; a header, padding or end-marker byte names the member or the tar framing.
                member.Contains(' ', StringComparison.Ordinal)
                    ? result.Error.Contains(member.Split(' ')[0], StringComparison.Ordinal) || result.Error.Contains("tar", StringComparison.Ordinal)
                    : result.Error.Contains(member, StringComparison.Ordinal),
                $"byte {position} ({member}): {result.Error}");
        }

        Assert.True(tried > 3000, $"only {tried} positions");

        // The unused bytes really are unused: every one of them was flipped and verification did not notice.
        Assert.Equal(unused.Order(), stillVerified.Order());
    }

    private static IEnumerable<(int Position, string Member)> Positions(TarLayout layout, int length)
    {
        foreach (var member in layout.Members)
        {
            for (var i = 0; i < 512; i++)
            {
                yield return (member.HeaderOffset + i, $"{member.Name} header");
            }

            var step = member.Name.StartsWith("entries/", StringComparison.Ordinal) ? 3 : 1;
            for (var i = 0; i < member.Size; i += step)
            {
                yield return (member.DataOffset + i, member.Name);
            }

            for (var i = member.DataOffset + (int)member.Size; i < member.DataOffset + Padded(member.Size); i++)
            {
                yield return (i, $"{member.Name} padding");
            }
        }

        for (var i = layout.End; i < length; i++)
        {
            yield return (i, "end of archive tar");
        }
    }

    /// <summary>
    /// The bytes verification may ignore: none. System.Formats.Tar alone would ignore many (it checks no header checksum,
    /// so the unused header fields, the name's NUL padding, the checksum itself; the zero padding after each member's
    /// data; the end-of-archive blocks), so the verifier checks every header checksum, the padding and the end marker.
    /// </summary>
    private static HashSet<int> UnusedBytes(TarLayout layout, int length)
    {
        _ = (layout, length);
        return [];
    }

    private static string WithoutTiming(string output) => Regex.Replace(output, @" \([0-9.]+ MB in [0-9.]+ s\)", string.Empty);

    private static int Padded(long size) => (int)((size + 511) / 512 * 512);

    // Re-packs a bundle after changing members, re-signing the manifest with the right digests, so only the check
    // under test can notice; returns the verifier's failure.
    private async Task<string> VerifyRewrittenAsync(string path, Action<Dictionary<string, byte[]>> change)
    {
        var members = new Dictionary<string, byte[]>();
        var order = new List<string>();
        await using (var stream = File.OpenRead(path))
        {
            await using var tar = new System.Formats.Tar.TarReader(stream);
            while (await tar.GetNextEntryAsync() is { } entry)
            {
                using var copy = new MemoryStream();
                await entry.DataStream!.CopyToAsync(copy);
                members[entry.Name] = copy.ToArray();
                order.Add(entry.Name);
            }
        }

        change(members);
        var manifest = BundleManifest.TryParse(members["manifest.json"].AsSpan(0, members["manifest.json"].Length - 1), out _)!;
        manifest = manifest with
        {
            Files = [.. manifest.Files.Select(f => f with { Size = members[f.Name].Length, Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(members[f.Name])) })],
        };
        members["manifest.json"] = manifest.ToUtf8Bytes();
        members["manifest.sig"] = Atp.Integrity.SignedNote.Sign(Encoding.UTF8.GetString(members["manifest.json"]), Log.Signer).ToUtf8Bytes();
        var rewritten = Path.Combine(Log.Scratch("rewritten"), Path.GetFileName(path));
        await using (var stream = File.Create(rewritten))
        {
            await using var tar = new System.Formats.Tar.TarWriter(stream, System.Formats.Tar.TarEntryFormat.Ustar);
            foreach (var name in order)
            {
                await tar.WriteEntryAsync(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream(members[name]) });
            }
        }

        var result = await CliRun.InProcessAsync("verify", "bundle", rewritten, "--key", Key);
        Assert.Equal(1, result.ExitCode);
        return result.Error["FAILED: ".Length..].TrimEnd();
    }

    /// <summary>Where each member's header and data are in a ustar file (512-byte blocks), read independently of System.Formats.Tar.</summary>
    private sealed record TarLayout(IReadOnlyList<TarMember> Members, int End)
    {
        public static TarLayout Read(byte[] tar)
        {
            var members = new List<TarMember>();
            var offset = 0;
            while (tar.AsSpan(offset, 512).ContainsAnyExcept((byte)0))
            {
                var name = Encoding.ASCII.GetString(tar, offset, 100).TrimEnd('\0');
                var size = Convert.ToInt64(Encoding.ASCII.GetString(tar, offset + 124, 11), 8);
                members.Add(new TarMember(name, offset, offset + 512, size));
                offset += 512 + Padded(size);
            }

            return new TarLayout(members, offset);
        }
    }

    private sealed record TarMember(string Name, int HeaderOffset, int DataOffset, long Size);
}
