using System.Text.Json;
using Atp.Core.Holds;
using Atp.Core.Query;
using Atp.Core.Storage;

namespace Atp.Server.Holds;

/// <summary>
/// Which active holds may cover a data subject's events, so that an erasure of the subject is refused while they last:
/// a hold that names the subject (as actor or target) always does; a hold that names no party does when at least one
/// event about the subject (the subject as actor or as a target) falls under its types and time range.
/// </summary>
/// <remarks>
/// The events are found through the read models, and the entries they do not show yet are read from the log itself:
/// the tail the projector has not reached and the dead letters it could not project. So an event is seen as soon as
/// its append committed. What is appended or held after this check runs is not seen by it (docs/api.md, "Legal holds").
/// </remarks>
internal static class SubjectHolds
{
    /// <summary>At most this many entries past the projection are read from the log; beyond it the check cannot be made.</summary>
    public const int MaxUnprojectedEntries = 50_000;

    private const int PageSize = 500;
    private const int MaxDeadLetters = 10_000;

    /// <summary>The ids of the holds that cover the subject (newest first), or why the check could not be made.</summary>
    public static async Task<(IReadOnlyList<string> HoldIds, string? Unchecked)> FindAsync(
        ILegalHoldStore holds, IEventQueryStore query, ILogStore log, string tenantId, string subject, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(holds);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(log);
        var candidates = (await holds.ListHoldsAsync(tenantId, includeReleased: false, cancellationToken).ConfigureAwait(false))
            .Where(h => h.Scope.MayCoverSubject(subject))
            .ToList();
        var covering = new HashSet<string>(StringComparer.Ordinal);
        var open = new List<LegalHold>();
        foreach (var hold in candidates)
        {
            if (hold.Scope.ActorId is null && hold.Scope.TargetId is null)
            {
                open.Add(hold);
            }
            else
            {
                covering.Add(hold.Id);
            }
        }

        if (open.Count > 0)
        {
            var unprojected = await UnprojectedEventsAsync(query, log, tenantId, subject, cancellationToken).ConfigureAwait(false);
            if (unprojected is null)
            {
                return ([], $"the tenant's read models are more than {MaxUnprojectedEntries} entries behind its log");
            }

            foreach (var hold in open)
            {
                if (unprojected.Any(e => e.CoveredBy(hold.Scope))
                    || await AnyProjectedAsync(query, new EventQuery(tenantId) { ActorId = subject }, hold.Scope, cancellationToken).ConfigureAwait(false)
                    || await AnyProjectedAsync(query, new EventQuery(tenantId) { TargetId = subject }, hold.Scope, cancellationToken).ConfigureAwait(false))
                {
                    covering.Add(hold.Id);
                }
            }
        }

        return ([.. candidates.Where(h => covering.Contains(h.Id)).Select(h => h.Id)], null);
    }

    // Pages through the subject's searchable events in the hold's time range until one falls under its types.
    private static async Task<bool> AnyProjectedAsync(IEventQueryStore query, EventQuery about, HoldScope scope, CancellationToken cancellationToken)
    {
        var search = about with { From = scope.From, To = scope.Until, Ascending = true, Limit = PageSize };
        while (true)
        {
            var page = await query.SearchAsync(search, cancellationToken).ConfigureAwait(false);
            if (page.Hits.Any(hit => EventFacts.Read(hit.Entry) is { } facts && facts.CoveredBy(scope)))
            {
                return true;
            }

            if (!page.HasMore || page.Hits.Count == 0)
            {
                return false;
            }

            search = search with { After = page.Hits[^1].Position };
        }
    }

    // The subject's events the read models do not show: the log's tail past the projection and the dead letters; null
    // when the tail is too long to read here.
    private static async Task<List<EventFacts>?> UnprojectedEventsAsync(IEventQueryStore query, ILogStore log, string tenantId, string subject, CancellationToken cancellationToken)
    {
        var found = new List<EventFacts>();
        var size = (await log.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false))?.Size ?? 0;
        var status = await query.GetProjectionStatusAsync(tenantId, cancellationToken).ConfigureAwait(false);
        if (status is { Rebuilding: true })
        {
            throw new ProjectionRebuildingException();
        }

        var next = Math.Min(status?.ProjectedSize ?? 0, size);
        if (size - next > MaxUnprojectedEntries)
        {
            return null;
        }

        while (next < size)
        {
            var entries = await log.ListEntriesAsync(tenantId, next, PageSize, cancellationToken).ConfigureAwait(false);
            if (entries.Count == 0)
            {
                break;
            }

            found.AddRange(entries.Select(EventFacts.Read).OfType<EventFacts>().Where(e => e.IsAbout(subject)));
            next = entries[^1].Index + 1;
        }

        if (status is { DeadLetters: > 0 })
        {
            foreach (var letter in await query.ListDeadLettersAsync(tenantId, MaxDeadLetters, cancellationToken).ConfigureAwait(false))
            {
                if (await log.GetEntryAsync(tenantId, letter.Index, cancellationToken).ConfigureAwait(false) is { } entry
                    && EventFacts.Read(entry) is { } facts && facts.IsAbout(subject))
                {
                    found.Add(facts);
                }
            }
        }

        return found;
    }

    /// <summary>What a hold's scope looks at in one stored event.</summary>
    private sealed record EventFacts(string Type, string ActorId, IReadOnlyList<string> TargetIds, DateTimeOffset OccurredAt)
    {
        public bool IsAbout(string subject) =>
            string.Equals(ActorId, subject, StringComparison.Ordinal) || TargetIds.Contains(subject, StringComparer.Ordinal);

        public bool CoveredBy(HoldScope scope) => scope.Covers(Type, ActorId, TargetIds, OccurredAt);

        // Null for a leaf that is not an event (its bytes failed a check elsewhere, or it is not ATP's event JSON).
        public static EventFacts? Read(LogEntry entry)
        {
            try
            {
                using var leaf = JsonDocument.Parse(entry.Leaf);
                var root = leaf.RootElement;
                if (root.ValueKind != JsonValueKind.Object
                    || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                    || !root.TryGetProperty("actor", out var actor) || actor.ValueKind != JsonValueKind.Object
                    || !actor.TryGetProperty("id", out var actorId) || actorId.ValueKind != JsonValueKind.String
                    || !root.TryGetProperty("occurredAt", out var occurredAt) || occurredAt.ValueKind != JsonValueKind.String || !occurredAt.TryGetDateTimeOffset(out var at))
                {
                    return null;
                }

                var targets = new List<string>();
                if (root.TryGetProperty("targets", out var targetsJson) && targetsJson.ValueKind == JsonValueKind.Array)
                {
                    foreach (var target in targetsJson.EnumerateArray())
                    {
                        if (target.ValueKind == JsonValueKind.Object && target.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                        {
                            targets.Add(id.GetString()!);
                        }
                    }
                }

                return new EventFacts(type.GetString()!, actorId.GetString()!, targets, at);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
