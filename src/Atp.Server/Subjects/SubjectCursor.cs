using System.Globalization;
using Atp.Core.Query;
using Atp.Server.Query;

namespace Atp.Server.Subjects;

/// <summary>
/// The cursor of a data subject's pages: the size of the checkpoint the first page named, in front of a search cursor
/// (<see cref="QueryCursor"/>: snapshot and position, MACed) whose filter digest binds the tenant, the subject and that
/// size. A cursor with another size, subject or tenant fails the MAC's digest check, so the size needs no MAC of its own.
/// </summary>
internal static class SubjectCursor
{
    /// <summary>Where the next page starts, and the checkpoint every page's proofs lead to.</summary>
    public readonly record struct State(ulong CheckpointSize, ulong SnapshotSize, QueryPosition After);

    public static string Encode(QueryCursor cursors, string tenantId, string subject, State state) =>
        state.CheckpointSize.ToString(CultureInfo.InvariantCulture) + "."
        + cursors.Encode(new QueryCursor.State(Ascending: true, state.SnapshotSize, state.After), Digest(tenantId, subject, state.CheckpointSize));

    public static bool TryDecode(QueryCursor cursors, string tenantId, string subject, string cursor, out State state)
    {
        state = default;
        var dot = cursor.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0
            || !ulong.TryParse(cursor.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var checkpointSize)
            || !cursors.TryDecode(cursor[(dot + 1)..], Digest(tenantId, subject, checkpointSize), out var inner)
            || !inner.Ascending
            || inner.SnapshotSize > checkpointSize)
        {
            return false;
        }

        state = new State(checkpointSize, inner.SnapshotSize, inner.After);
        return true;
    }

    // Apart from every search digest: a search cursor is never a subject cursor, nor the other way round.
    private static string Digest(string tenantId, string subject, ulong checkpointSize) =>
        string.Join('\u001f', "subject-events", tenantId, subject, checkpointSize.ToString(CultureInfo.InvariantCulture));
}
