using Atp.Core.Query;
using Atp.Integrity;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>
/// The read-model sweep's check (<see cref="VerifyProjectedRowsAsync"/>): a search checks only the rows it serves, so a
/// byte flip in an indexed value or an index entry that makes a search miss a row is never seen there. The sweep
/// recomputes each projected entry's row from its log entry with the projector's own <see cref="LeafFields"/> and
/// looks it up through every index a search may walk; any difference is damage like any other.
/// </summary>
internal sealed partial class SqliteReadModels
{
    public async Task<IReadOnlyList<string>> ListProjectedTenantsAsync(CancellationToken cancellationToken)
    {
        if (IsRebuilding)
        {
            return [];
        }

        try
        {
            using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT tenant_id FROM projections WHERE projected_size > 0 ORDER BY tenant_id";
            var tenants = new List<string>();
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                tenants.Add(reader.GetString(0));
            }

            return tenants;
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            return [];
        }
    }

    public async Task<ReadModelVerification> VerifyProjectedRowsAsync(string tenantId, ulong fromIndex, int maxRows, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        if (IsRebuilding)
        {
            return new ReadModelVerification(fromIndex, 0, Damaged: false, Done: true);
        }

        try
        {
            var (next, checkedRows, damage) = await VerifyOnceAsync(tenantId, fromIndex, maxRows, cancellationToken).ConfigureAwait(false);
            if (damage is not null)
            {
                ReportDamage(damage);
                return new ReadModelVerification(fromIndex, checkedRows, Damaged: true, Done: true);
            }

            return new ReadModelVerification(next, checkedRows, Damaged: false, Done: next == fromIndex);
        }
        catch (SqliteException e) when (ReadModelDamage.IsCorruption(e))
        {
            ReportDamage(e.Message);
            return new ReadModelVerification(fromIndex, 0, Damaged: true, Done: true);
        }
    }

    // Returns the next index to check, the entries compared, and the damage found (null when none).
    private async Task<(ulong Next, int Checked, string? Damage)> VerifyOnceAsync(string tenantId, ulong fromIndex, int maxRows, CancellationToken cancellationToken)
    {
        using var logConnection = await log.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (tenantNumbers.Find(logConnection, null, tenantId) is not { } num)
        {
            return (fromIndex, 0, null);
        }

        // One snapshot of the read models: the projected prefix and its rows agree (the entries of a log below its
        // projected size never change, so the log needs no snapshot of its own).
        using var connection = await readModels.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var snapshot = connection.BeginTransaction(deferred: true);
        ulong projected;
        using (var size = connection.CreateCommand())
        {
            size.Transaction = snapshot;
            size.CommandText = "SELECT projected_size FROM projections WHERE tenant_id = $t";
            size.Parameters.AddWithValue("$t", tenantId);
            projected = await size.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long value ? (ulong)value : 0;
        }

        if (fromIndex >= projected)
        {
            return (fromIndex, 0, null);
        }

        var last = Math.Min(projected, fromIndex + (ulong)maxRows) - 1;
        var deadLetters = new HashSet<long>();
        using (var letters = connection.CreateCommand())
        {
            letters.Transaction = snapshot;
            letters.CommandText = "SELECT idx FROM dead_letters WHERE tenant_id = $t AND idx BETWEEN $first AND $last";
            letters.Parameters.AddWithValue("$t", tenantId);
            letters.Parameters.AddWithValue("$first", (long)fromIndex);
            letters.Parameters.AddWithValue("$last", (long)last);
            using var reader = await letters.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                deadLetters.Add(reader.GetInt64(0));
            }
        }

        var rows = new Dictionary<long, StoredRow>();
        using (var index = connection.CreateCommand())
        {
            index.Transaction = snapshot;
            index.CommandText = "SELECT idx, event_id, occurred_at, actor_type, actor_id, action, outcome FROM event_index WHERE tenant_num = $num AND idx BETWEEN $first AND $last";
            index.Parameters.AddWithValue("$num", num);
            index.Parameters.AddWithValue("$first", (long)fromIndex);
            index.Parameters.AddWithValue("$last", (long)last);
            using var reader = await index.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows[reader.GetInt64(0)] = new StoredRow((byte[])reader[1], reader.GetInt64(2), reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetString(6));
            }
        }

        using var probes = new IndexProbes(connection, snapshot, num);
        var checkedRows = 0;
        using var entries = logConnection.CreateCommand();
        entries.CommandText = "SELECT id, event_id, leaf, leaf_hash FROM log_entries WHERE id BETWEEN $first AND $last AND purged_by IS NULL ORDER BY id";
        entries.Parameters.AddWithValue("$first", LogRowId.Of(num, fromIndex));
        entries.Parameters.AddWithValue("$last", LogRowId.Of(num, last));
        using (var reader = await entries.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var rowId = reader.GetInt64(0);
                var idx = (long)LogRowId.IndexOf(rowId);
                checkedRows++;
                var leaf = (byte[])reader[2];
                if (!MerkleHasher.HashLeaf(leaf).Equals(new Hash((byte[])reader[3])))
                {
                    // The log entry itself is altered: the log's damage, found by the integrity sweep and where it is served.
                    continue;
                }

                LeafFields fields;
                try
                {
                    fields = LeafFields.Read(leaf);
                }
                catch (Exception e) when (ProjectionErrors.IsEntryFailure(e))
                {
                    if (!deadLetters.Contains(idx) && rows.ContainsKey(idx))
                    {
                        return (fromIndex, checkedRows, $"entry {idx} of tenant {tenantId} cannot be indexed, yet the read models hold a row for it");
                    }

                    continue;
                }

                if (!rows.TryGetValue(idx, out var row))
                {
                    // A dead letter, or a repeat of an event id the log holds at an earlier index (the inbox keeps
                    // the first and ignores the rest), has no row of its own.
                    if (deadLetters.Contains(idx) || probes.IndexOfEvent((byte[])reader[1]) is { } first && first < idx)
                    {
                        continue;
                    }

                    return (fromIndex, checkedRows, $"entry {idx} of tenant {tenantId} is below the projected size but has no row in the read models");
                }

                if (!row.Agrees((byte[])reader[1], fields))
                {
                    return (fromIndex, checkedRows, $"the indexed row of entry {idx} of tenant {tenantId} disagrees with the log");
                }

                if (probes.FindMissing(idx, rowId, row.EventId, fields) is { } missing)
                {
                    return (fromIndex, checkedRows, $"the read-model index {missing} lacks entry {idx} of tenant {tenantId}");
                }
            }
        }

        // Entries missing from the log itself are the log's damage (the integrity sweep reports them); a rebuild of the
        // read models would not bring them back, so they are not reported here.
        return (last + 1, checkedRows, null);
    }

    private sealed record StoredRow(byte[] EventId, long OccurredAt, string ActorType, string ActorId, string Action, string Outcome)
    {
        public bool Agrees(byte[] eventId, LeafFields fields) =>
            EventId.AsSpan().SequenceEqual(eventId) && OccurredAt == fields.OccurredAt && ActorType == fields.ActorType && ActorId == fields.ActorId
            && Action == fields.Action && Outcome == fields.Outcome;
    }

    /// <summary>
    /// Looks one entry up through each index a search walks (INDEXED BY pins the index: each lookup reads only it), the
    /// targets' rows, and the full-text index (contentless, so its words are probed with a MATCH on the entry's rowid).
    /// </summary>
    private sealed class IndexProbes : IDisposable
    {
        private readonly SqliteCommand _event;
        private readonly SqliteCommand _time;
        private readonly SqliteCommand _actor;
        private readonly SqliteCommand _action;
        private readonly SqliteCommand _target;
        private readonly SqliteCommand _targetType;
        private readonly SqliteCommand _text;

        public IndexProbes(SqliteConnection connection, SqliteTransaction transaction, long num)
        {
            SqliteCommand Command(string sql)
            {
                var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = sql;
                command.Parameters.AddWithValue("$num", num);
                return command;
            }

            _event = Command("SELECT idx FROM event_index INDEXED BY event_index_event WHERE tenant_num = $num AND event_id = $eventId");
            _time = Command("SELECT COUNT(*) FROM event_index INDEXED BY event_index_time WHERE tenant_num = $num AND occurred_at = $at AND idx = $idx AND actor_type = $actorType AND action = $action AND outcome = $outcome");
            _actor = Command("SELECT COUNT(*) FROM event_index INDEXED BY event_index_actor WHERE tenant_num = $num AND actor_id = $actorId AND occurred_at = $at AND idx = $idx");
            _action = Command("SELECT COUNT(*) FROM event_index INDEXED BY event_index_action WHERE tenant_num = $num AND action = $action AND occurred_at = $at AND idx = $idx");
            _target = Command("SELECT COUNT(*) FROM event_targets WHERE tenant_num = $num AND target_id = $targetId AND target_type = $targetType AND occurred_at = $at AND idx = $idx");
            _targetType = Command("SELECT COUNT(*) FROM event_targets INDEXED BY event_targets_type WHERE tenant_num = $num AND target_type = $targetType AND occurred_at = $at AND idx = $idx AND target_id = $targetId");
            _text = Command("SELECT COUNT(*) FROM event_text WHERE event_text MATCH $text AND rowid = $rowId");
        }

        /// <summary>The index of the entry whose row holds the event id, found through the inbox index; null when none.</summary>
        public long? IndexOfEvent(byte[] eventId)
        {
            _event.Parameters.AddWithValue("$eventId", eventId);
            try
            {
                return _event.ExecuteScalar() is long found ? found : null;
            }
            finally
            {
                Reset(_event);
            }
        }

        /// <summary>The name of the first index that lacks the entry; null when every one has it.</summary>
        public string? FindMissing(long idx, long rowId, byte[] eventId, LeafFields fields)
        {
            if (IndexOfEvent(eventId) != idx)
            {
                return "event_index_event";
            }

            if (!Has(_time, ("$at", fields.OccurredAt), ("$idx", idx), ("$actorType", fields.ActorType), ("$action", fields.Action), ("$outcome", fields.Outcome)))
            {
                return "event_index_time";
            }

            if (!Has(_actor, ("$actorId", fields.ActorId), ("$at", fields.OccurredAt), ("$idx", idx)))
            {
                return "event_index_actor";
            }

            if (!Has(_action, ("$action", fields.Action), ("$at", fields.OccurredAt), ("$idx", idx)))
            {
                return "event_index_action";
            }

            foreach (var (type, id) in fields.Targets)
            {
                if (!Has(_target, ("$targetId", id), ("$targetType", type), ("$at", fields.OccurredAt), ("$idx", idx)))
                {
                    return "event_targets";
                }

                if (!Has(_targetType, ("$targetId", id), ("$targetType", type), ("$at", fields.OccurredAt), ("$idx", idx)))
                {
                    return "event_targets_type";
                }
            }

            // The words a search by text would match; a term without a letter or digit is no token of unicode61.
            var terms = fields.Text.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Where(t => t.Any(char.IsLetterOrDigit)).ToArray();
            if (terms.Length > 0 && !Has(_text, ("$text", FtsQuery(string.Join(' ', terms))), ("$rowId", rowId)))
            {
                return "event_text";
            }

            return null;
        }

        public void Dispose()
        {
            _event.Dispose();
            _time.Dispose();
            _actor.Dispose();
            _action.Dispose();
            _target.Dispose();
            _targetType.Dispose();
            _text.Dispose();
        }

        private static bool Has(SqliteCommand command, params (string Name, object Value)[] values)
        {
            foreach (var (name, value) in values)
            {
                command.Parameters.AddWithValue(name, value);
            }

            try
            {
                return command.ExecuteScalar() is long count && count > 0;
            }
            finally
            {
                Reset(command);
            }
        }

        // Keeps only $num, bound once.
        private static void Reset(SqliteCommand command)
        {
            for (var i = command.Parameters.Count - 1; i >= 1; i--)
            {
                command.Parameters.RemoveAt(i);
            }
        }
    }
}
