using System.Text;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Core.Tests.Storage;

/// <summary>
/// The published-head record (<c>atp-published-heads</c>) on a real file: it only ever moves forward unless an
/// operator's acceptance re-bases it, survives a line torn by a crash, compacts when it opens, and is owner-only.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PublishedHeadsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-heads-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_recorded_head_survives_reopening_and_never_moves_back()
    {
        using (var heads = PublishedHeads.Open(_directory))
        {
            heads.Record([("acme", Head(5, 1)), ("globex", Head(2, 2))]);
            heads.Record([("acme", Head(3, 3))]);
            heads.Record([("acme", Head(9, 4))]);
            Assert.Equal(Head(9, 4), heads.Find("acme"));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PublishedHeads.PathOf(_directory)));
        using var reopened = PublishedHeads.Open(_directory);
        Assert.Equal(Head(9, 4), reopened.Find("acme"));
        Assert.Equal(Head(2, 2), reopened.Find("globex"));
        Assert.Null(reopened.Find("initech"));

        // Compacted at open: one line per tenant.
        Assert.Equal(2, File.ReadAllLines(PublishedHeads.PathOf(_directory)).Length);
    }

    [Fact]
    public void A_line_torn_by_a_crash_is_ignored()
    {
        using (var heads = PublishedHeads.Open(_directory))
        {
            heads.Record([("acme", Head(5, 1))]);
        }

        File.AppendAllText(PublishedHeads.PathOf(_directory), $"head acme 12 {Head(12, 9).Root.ToBase64()[..10]}", Encoding.UTF8);

        // An acceptance written after the torn line is still read.
        PublishedHeads.Accept(_directory, "acme", DateTimeOffset.UnixEpoch);

        using var reopened = PublishedHeads.Open(_directory);
        Assert.Equal(Head(5, 1), reopened.Find("acme"));
        Assert.True(reopened.IsAccepted("acme"));
    }

    [Fact]
    public void An_acceptance_is_kept_until_a_rebase_which_may_move_the_head_back()
    {
        using (var heads = PublishedHeads.Open(_directory))
        {
            heads.Record([("acme", Head(7, 1))]);
        }

        PublishedHeads.Accept(_directory, "acme", DateTimeOffset.UnixEpoch);
        using (var heads = PublishedHeads.Open(_directory))
        {
            Assert.True(heads.IsAccepted("acme"));
            heads.Rebase("acme", Head(4, 2));
            Assert.False(heads.IsAccepted("acme"));
            Assert.Equal(Head(4, 2), heads.Find("acme"));
        }

        using var reopened = PublishedHeads.Open(_directory);
        Assert.False(reopened.IsAccepted("acme"));
        Assert.Equal(Head(4, 2), reopened.Find("acme"));
    }

    [Fact]
    public void A_tenant_id_that_would_break_the_line_format_is_refused()
    {
        using var heads = PublishedHeads.Open(_directory);
        Assert.Throws<ArgumentException>(() => heads.Record([("ac me", Head(1, 1))]));
        Assert.Throws<ArgumentException>(() => PublishedHeads.Accept(_directory, "acme\nhead", DateTimeOffset.UnixEpoch));
        Assert.Null(heads.Find("ac me"));
    }

    private static TreeHead Head(ulong size, byte seed) => new(size, Hash.Sha256([seed]));
}
