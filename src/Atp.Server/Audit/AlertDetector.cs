using Atp.Core.Events;

namespace Atp.Server.Audit;

/// <summary>
/// Simple detectors over the security events: a burst of authentication failures from one key or one IP within a
/// minute, and a key used in a region other than the one that last served it. Each raises an alert once per
/// subject and window, so a flood produces one alert, not thousands.
/// </summary>
internal sealed class AlertDetector(TimeProvider clock, int failureThreshold = AlertDetector.DefaultFailureThreshold)
{
    public const int DefaultFailureThreshold = 20;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Queue<DateTimeOffset>> _failures = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _alerted = new(StringComparer.Ordinal);
    private DateTimeOffset _nextSweep;

    /// <summary>Feeds one security event; returns the alert it completes, if any.</summary>
    public PlatformEvent? Observe(PlatformEvent securityEvent)
    {
        ArgumentNullException.ThrowIfNull(securityEvent);
        if (securityEvent.Type != PlatformEvents.SecurityType || !securityEvent.Action.StartsWith("auth.", StringComparison.Ordinal))
        {
            return null;
        }

        // A failure is charged to the key it named when there was one, and always to the client address.
        var subjects = new List<string>(2);
        if (securityEvent.Data?.GetValueOrDefault("keyId") is { Length: > 0 } keyId)
        {
            subjects.Add("key:" + keyId);
        }

        if (securityEvent.Context?.Ip is { Length: > 0 } ip)
        {
            subjects.Add("ip:" + ip);
        }

        var now = clock.GetUtcNow();
        lock (_gate)
        {
            Sweep(now);
            foreach (var subject in subjects)
            {
                if (!_failures.TryGetValue(subject, out var times))
                {
                    _failures[subject] = times = new Queue<DateTimeOffset>();
                }

                times.Enqueue(now);
                while (times.Count > 0 && times.Peek() <= now - Window)
                {
                    times.Dequeue();
                }

                if (times.Count >= failureThreshold && !(_alerted.TryGetValue(subject, out var last) && last > now - Window))
                {
                    _alerted[subject] = now;
                    var (kind, id) = (subject[..subject.IndexOf(':', StringComparison.Ordinal)], subject[(subject.IndexOf(':', StringComparison.Ordinal) + 1)..]);
                    return new PlatformEvent(
                        PlatformEvents.AlertType, "alert.auth-failure-burst", new Party("detector", "auth-failure-burst", null), securityEvent.TenantId, EventOutcome.Success, null,
                        new Dictionary<string, string>
                        {
                            ["subjectType"] = kind == "key" ? "api-key" : "ip",
                            ["subject"] = id,
                            ["failures"] = times.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            ["windowSeconds"] = ((int)Window.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        });
                }
            }
        }

        return null;
    }

    /// <summary>The alert for a key served in <paramref name="region"/> after <paramref name="previousRegion"/>.</summary>
    public static PlatformEvent SecondRegion(string keyId, string? tenantId, string previousRegion, string region) =>
        new(PlatformEvents.AlertType, "alert.key-second-region", new Party("detector", "key-second-region", null), tenantId, EventOutcome.Success, null,
            new Dictionary<string, string> { ["keyId"] = keyId, ["previousRegion"] = previousRegion, ["region"] = region });

    // Keeps memory bounded under a flood of distinct addresses: subjects quiet for a window are forgotten.
    private void Sweep(DateTimeOffset now)
    {
        if (now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + Window;
        foreach (var (subject, times) in _failures.ToArray())
        {
            if (times.Count == 0 || times.Last() <= now - Window)
            {
                _failures.Remove(subject);
            }
        }

        foreach (var (subject, at) in _alerted.ToArray())
        {
            if (at <= now - Window)
            {
                _alerted.Remove(subject);
            }
        }
    }
}
