using System.Security.Cryptography;
using Atp.Core.Events;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Storage.Contract;
using Microsoft.Extensions.Options;

namespace Atp.Server.Tests;

/// <summary>The gateway's parts on their own: the secret sealer and its key file, the nonce cache's bound, the failure detector's window.</summary>
public sealed class GatewayPartsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-gateway-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private IOptions<AtpOptions> Options(int maxNonces = 1000) =>
        Microsoft.Extensions.Options.Options.Create(new AtpOptions { DataDirectory = _directory, Auth = new AuthOptions { MaxRememberedNonces = maxNonces } });

    [Fact]
    public void A_sealed_secret_opens_only_for_its_key_id_unaltered_and_under_the_same_kek()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        using var sealer = new FileSecretSealer(Options());
        var blob = sealer.Seal(secret, "key_a");
        var opened = new byte[32];

        Assert.True(sealer.TryUnseal(blob, "key_a", opened));
        Assert.Equal(secret, opened);
        Assert.False(sealer.TryUnseal(blob, "key_b", opened));
        Assert.Equal(new byte[32], opened);
        for (var i = 0; i < blob.Length; i++)
        {
            var altered = (byte[])blob.Clone();
            altered[i] ^= 0x01;
            Assert.False(sealer.TryUnseal(altered, "key_a", opened), $"byte {i} altered");
        }

        Assert.Equal(-1, blob.AsSpan().IndexOf(secret));

        // Another cell's KEK cannot open it; the same data directory's KEK (a restart) can.
        using var restarted = new FileSecretSealer(Options());
        Assert.True(restarted.TryUnseal(blob, "key_a", opened));
        File.Delete(Path.Combine(_directory, "keys", "cell-kek.key"));
        using var otherCell = new FileSecretSealer(Options());
        Assert.False(otherCell.TryUnseal(blob, "key_a", opened));
    }

    [Fact]
    public void A_node_follows_a_kek_rotation_made_by_another_node_of_the_cell()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var opened = new byte[32];
        using var rotating = new FileSecretSealer(Options());
        using var other = new FileSecretSealer(Options());
        var underFirst = other.Seal(secret, "key_a");

        var added = rotating.AddKek();
        var underNew = rotating.Seal(secret, "key_a");

        Assert.True(FileSecretSealer.TryGetKekId(underFirst, out var firstId) && firstId == FileSecretSealer.FirstKekId);
        Assert.True(FileSecretSealer.TryGetKekId(underNew, out var newId) && newId == added);
        Assert.True(other.TryUnseal(underNew, "key_a", opened));
        Assert.Equal(secret, opened);
        Assert.True(FileSecretSealer.TryGetKekId(other.Seal(secret, "key_b"), out var otherSeals) && otherSeals == added);
        var path = Path.Combine(_directory, "keys", "kek", FileSecretSealer.FormatId(added) + ".key");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        // Retired: the first KEK's file is gone, so a restarted node no longer opens what it sealed; the new KEK's blobs still open.
        Assert.False(rotating.RetireKek(added));
        Assert.True(rotating.RetireKek(FileSecretSealer.FirstKekId));
        using var restarted = new FileSecretSealer(Options());
        Assert.False(restarted.TryUnseal(underFirst, "key_a", opened));
        Assert.True(restarted.TryUnseal(underNew, "key_a", opened));
        Assert.Equal(added, restarted.CurrentKekId);
    }

    [Fact]
    public void The_kek_file_is_owner_only()
    {
        using var sealer = new FileSecretSealer(Options());
        var path = Path.Combine(_directory, "keys", "cell-kek.key");

        Assert.True(File.Exists(path));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        Assert.Equal(32, Convert.FromBase64String(File.ReadAllText(path).Trim()).Length);
    }

    [Fact]
    public void The_nonce_cache_refuses_a_replay_is_bounded_and_forgets_after_twice_the_window()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        var cache = new NonceCache(Options(maxNonces: 1000), clock);

        Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", "n-0"));
        Assert.Equal(NonceCache.Result.Replayed, cache.TryUse("key_a", "n-0"));
        Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_b", "n-0"));
        for (var i = 1; i < 999; i++)
        {
            Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", $"n-{i}"));
        }

        Assert.Equal(NonceCache.Result.Full, cache.TryUse("key_a", "one-too-many"));

        clock.Advance(TimeSpan.FromSeconds(601));
        Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", "one-too-many"));
        Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", "n-0"));
    }

    [Fact]
    public void A_request_to_a_full_nonce_cache_does_bounded_work_and_the_cache_drains_as_requests_come()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        var cache = new NonceCache(Options(maxNonces: 1000), clock);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", $"n-{i}"));
        }

        clock.Advance(TimeSpan.FromSeconds(601));
        Assert.Equal(NonceCache.Result.Fresh, cache.TryUse("key_a", "after"));

        // One request evicted a bounded number of expired nonces (64), not all 1,000.
        Assert.Equal(1000 - 64 + 1, cache.Count);
        for (var i = 0; i < 20; i++)
        {
            cache.TryUse("key_a", $"later-{i}");
        }

        Assert.Equal(21, cache.Count);
    }

    [Fact]
    public void The_failure_detector_alerts_at_the_threshold_within_a_minute_once_per_window()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        var detector = new AlertDetector(clock);
        PlatformEvent Failure(string ip) => new(PlatformEvents.SecurityType, PlatformEvents.AuthFailed, new Party("client", ip, null), null, EventOutcome.Failure, new EventContext(ip, null, null), null);

        // 19 failures spread over more than a minute never reach 20 inside one window.
        for (var i = 0; i < 19; i++)
        {
            Assert.Null(detector.Observe(Failure("10.0.0.1")));
            clock.Advance(TimeSpan.FromSeconds(4));
        }

        Assert.Null(detector.Observe(Failure("10.0.0.1")));
        var alerts = Enumerable.Range(0, 40).Select(_ => detector.Observe(Failure("10.0.0.2"))).Where(a => a is not null).ToList();

        var alert = Assert.Single(alerts);
        Assert.Equal(PlatformEvents.AlertType, alert!.Type);
        Assert.Equal("10.0.0.2", alert.Data!["subject"]);
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Single(Enumerable.Range(0, 20).Select(_ => detector.Observe(Failure("10.0.0.2"))).ToList(), a => a is not null);
    }
}
