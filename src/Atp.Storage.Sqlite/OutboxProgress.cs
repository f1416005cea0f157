namespace Atp.Storage.Sqlite;

/// <summary>
/// How far the projector has handled the outbox. The projector only records the id here; the sequencer deletes the
/// handled rows inside its next group commit, so the projector (a low-priority thread) never holds the log's write
/// turn that appends wait for, and no extra commit is spent on the deletion. Until deleted, rows up to the id are
/// skipped by the projector and by the lag; after a restart they are read once more and the inbox makes that a no-op.
/// </summary>
internal sealed class OutboxProgress
{
    private long _acknowledged;
    private long _deleted;

    /// <summary>Every outbox row with an id up to this one has been projected.</summary>
    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    public void Acknowledge(long id)
    {
        var seen = Interlocked.Read(ref _acknowledged);
        while (id > seen)
        {
            var before = Interlocked.CompareExchange(ref _acknowledged, id, seen);
            if (before == seen)
            {
                return;
            }

            seen = before;
        }
    }

    /// <summary>For the sequencer's transaction: the id to delete rows up to, when it moved since the last call.</summary>
    public long? TakeDeletable()
    {
        var acknowledged = Acknowledged;
        if (acknowledged <= _deleted)
        {
            return null;
        }

        _deleted = acknowledged;
        return acknowledged;
    }
}
