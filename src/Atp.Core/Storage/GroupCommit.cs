using System.Threading.Channels;

namespace Atp.Core.Storage;

/// <summary>
/// The queue in front of an engine's single writer (group commit): callers enqueue append requests and wait; the
/// writer takes everything queued, up to a bound, as one batch, commits it, and settles every request of the batch only
/// after the commit is durable. If the writer stops, every waiting and later append fails as not stored.
/// </summary>
public sealed class GroupCommit
{
    private readonly Channel<PendingAppend> _channel;
    private readonly List<PendingAppend> _batch = [];

    public GroupCommit(int capacity) =>
        _channel = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

    /// <summary>Queues the request and waits for the writer to settle it.</summary>
    public async Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        var pending = new PendingAppend(request);
        try
        {
            await _channel.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            throw new StoreUnavailableException("The log writer has stopped; nothing was stored.", e);
        }

        // Once queued the append may commit; a caller that stops waiting does not undo it.
        return await pending.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The writer's loop: hands each batch (at most <paramref name="maxEntries"/> entries and
    /// <paramref name="maxRequests"/> requests) to <paramref name="commit"/>, which must settle every request of it.
    /// Returns once <see cref="Complete"/> was called and the queue is empty.
    /// </summary>
    public async Task RunAsync(Func<IReadOnlyList<PendingAppend>, Task> commit, int maxEntries, int maxRequests)
    {
        ArgumentNullException.ThrowIfNull(commit);
        while (await _channel.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            _batch.Clear();
            var entries = 0;
            while (entries < maxEntries && _batch.Count < maxRequests && _channel.Reader.TryRead(out var next))
            {
                _batch.Add(next);
                entries += next.Request.Entries.Count;
            }

            if (_batch.Count > 0)
            {
                await commit(_batch).ConfigureAwait(false);
            }
        }
    }

    /// <summary>No more appends: the writer finishes what is queued, then its loop returns.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    /// <summary>The writer stopped for good: the batch in hand, everything queued and every later append fail as not stored.</summary>
    public void Stop(Exception reason)
    {
        _channel.Writer.TryComplete(reason);
        var failure = new StoreUnavailableException("The log writer has stopped; nothing of this append was stored.", reason);
        foreach (var pending in _batch)
        {
            pending.Completion.TrySetException(failure);
        }

        while (_channel.Reader.TryRead(out var queued))
        {
            queued.Completion.TrySetException(failure);
        }
    }
}

/// <summary>One queued append request and what the writer decided for it.</summary>
public sealed class PendingAppend
{
    internal PendingAppend(AppendRequest request) => Request = request;

    public AppendRequest Request { get; }

    /// <summary>The outcome to report once the batch is committed.</summary>
    public AppendOutcome? Outcome { get; set; }

    /// <summary>Set when only this request failed (its savepoint was rolled back); the rest of the batch goes on.</summary>
    public Exception? Failure { get; set; }

    internal TaskCompletionSource<AppendOutcome> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>After the commit: the caller gets <see cref="Outcome"/>, or <see cref="Failure"/>.</summary>
    public void Settle()
    {
        if (Failure is { } failure)
        {
            Completion.TrySetException(failure);
        }
        else
        {
            Completion.TrySetResult(Outcome ?? throw new InvalidOperationException("An append was settled without an outcome."));
        }
    }

    /// <summary>The batch did not commit: nothing of this request is stored.</summary>
    public void Fail(Exception reason) => Completion.TrySetException(reason);
}
