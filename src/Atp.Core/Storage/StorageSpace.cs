using Microsoft.Extensions.Logging;

namespace Atp.Core.Storage;

/// <summary>
/// Whether the store's disk has room for appends, shared by the engine's writer, the sealer, the projector and readiness.
/// A full disk is a state, not a stream of errors: each change (full → space returned, and back) is logged once, and
/// the failures in between are counted, not logged with a stack trace each.
/// </summary>
/// <remarks>
/// The state is entered by whoever first meets a disk-full error (<see cref="TryMarkFull"/>) and left by the engine
/// once it has proved there is room again (<see cref="MarkAvailable"/>): the embedded engine by measuring the free
/// space of its data directory, PostgreSQL by the next commit that succeeds (and, since no append may come to a node
/// that reports itself unready, by <see cref="IsFull"/> lapsing <see cref="FullStateLapse"/> after the last failure).
/// </remarks>
public sealed partial class StorageSpace(Func<Exception, bool> isDiskFull, bool lapses, TimeProvider clock, ILogger logger)
{
    /// <summary>What clients are told to wait before retrying an append refused for lack of space.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    /// <summary>With an engine that cannot measure its disk, how long after the last disk-full failure the state lapses.</summary>
    public static readonly TimeSpan FullStateLapse = TimeSpan.FromSeconds(30);

    // ENOSPC, as .NET reports it on Unix (the errno in HResult).
    private const int NoSpaceLeft = 28;

    private readonly Lock _gate = new();
    private bool _full;
    private long _lastFailure; // a TimeProvider timestamp: monotonic, so a wall-clock jump neither ends nor prolongs the state
    private long _refused;

    /// <summary>True while appends fail (or are refused) for lack of space.</summary>
    public bool IsFull
    {
        get
        {
            lock (_gate)
            {
                return _full && (!lapses || clock.GetElapsedTime(_lastFailure) < FullStateLapse);
            }
        }
    }

    /// <summary>Writes (group commits, sealer passes, projector turns) refused or failed for lack of space since the process started.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Whether <paramref name="exception"/> (or one it wraps) says the disk is full.</summary>
    public bool IsDiskFull(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (isDiskFull(e) || e is IOException { HResult: NoSpaceLeft })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// When <paramref name="exception"/> is a disk-full error: enters the full state (logging the change once) and
    /// returns true. Otherwise returns false and the caller handles the error as before.
    /// </summary>
    public bool TryMarkFull(Exception exception, string during)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (!IsDiskFull(exception))
        {
            return false;
        }

        MarkFull(during, exception.Message);
        return true;
    }

    /// <summary>Enters the full state without an exception (e.g. a start on a disk found full).</summary>
    public void MarkFull(string during, string reason)
    {
        Interlocked.Increment(ref _refused);
        bool changed;
        lock (_gate)
        {
            changed = !_full || (lapses && clock.GetElapsedTime(_lastFailure) >= FullStateLapse);
            _full = true;
            _lastFailure = clock.GetTimestamp();
        }

        if (changed)
        {
            LogFull(logger, during, reason);
        }
    }

    /// <summary>Counts a group commit refused while the state is full (no write was tried).</summary>
    public void CountRefused() => Interlocked.Increment(ref _refused);

    /// <summary>Leaves the full state (logging the change once); does nothing when not full.</summary>
    public void MarkAvailable(string how)
    {
        lock (_gate)
        {
            if (!_full)
            {
                return;
            }

            _full = false;
        }

        LogAvailable(logger, how, Refused);
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "The store's disk is full ({During}: {Reason}); appends are refused with 503 and readiness is down until space returns")]
    private static partial void LogFull(ILogger logger, string during, string reason);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "The store's disk has room again ({How}); appends resume ({Refused} writes refused or failed for lack of space since start)")]
    private static partial void LogAvailable(ILogger logger, string how, long refused);
}
