using System.Globalization;
using Atp.Core.Events;
using Atp.Core.Query;

namespace Atp.Server.Query;

/// <summary>
/// The query string of <c>GET /v1/tenants/{tenant}/events</c>, validated: every problem names its parameter, and an
/// unknown parameter is an error rather than silently ignored (a typo must not widen a search).
/// </summary>
internal static class SearchRequest
{
    public const int MaxLimit = 1000;
    private const int MaxValueLength = 200;

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "from", "to", "actor", "actorType", "action", "targetType", "targetId", "outcome", "q", "order", "limit", "cursor", "verify",
    };

    /// <summary>The query (without snapshot and position), its filter digest for the cursor, whether verify was asked, or the errors.</summary>
    public static (EventQuery? Query, string Digest, bool Verify, string? Cursor, List<string> Errors) Parse(string tenantId, IQueryCollection parameters)
    {
        var errors = new List<string>();
        foreach (var (name, values) in parameters)
        {
            if (!Known.Contains(name))
            {
                errors.Add($"{name}: unknown parameter; use one of {string.Join(", ", Known)}");
            }
            else if (values.Count > 1)
            {
                errors.Add($"{name}: given more than once");
            }
        }

        string? Text(string name)
        {
            var value = parameters[name].ToString();
            if (value.Length == 0)
            {
                return null;
            }

            if (value.Length > MaxValueLength || value.Any(char.IsControl))
            {
                errors.Add($"{name}: at most {MaxValueLength} characters, no control characters");
                return null;
            }

            return value;
        }

        DateTimeOffset? Time(string name)
        {
            var value = Text(name);
            if (value is null)
            {
                return null;
            }

            // RFC 3339: a full date-time with an explicit offset or Z.
            if (value.Length < 20 || !(value.EndsWith('Z') || value[^6] is '+' or '-')
                || !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            {
                errors.Add($"{name}: an RFC 3339 date-time such as 2026-11-26T10:00:00Z");
                return null;
            }

            return time;
        }

        var from = Time("from");
        var to = Time("to");
        if (from is not null && to is not null && from >= to)
        {
            errors.Add("to: must be later than from");
        }

        var action = Text("action");
        var prefix = false;
        if (action is not null)
        {
            prefix = action.EndsWith('*');
            var stem = prefix ? action[..^1] : action;
            if (stem.Contains('*', StringComparison.Ordinal) || (prefix && stem.Length == 0))
            {
                errors.Add("action: an exact action, or a prefix ending in a single '*' such as document.*");
            }

            action = stem;
        }

        var outcome = Text("outcome");
        if (outcome is not null && !EventOutcome.IsValid(outcome))
        {
            errors.Add("outcome: success, failure or unknown");
        }

        var order = Text("order") ?? "desc";
        if (order is not ("asc" or "desc"))
        {
            errors.Add("order: asc or desc");
        }

        var limit = 100;
        if (Text("limit") is { } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            errors.Add($"limit: 1 to {MaxLimit}");
        }

        var verify = false;
        if (Text("verify") is { } verifyText && !bool.TryParse(verifyText, out verify))
        {
            errors.Add("verify: true or false");
        }

        var text = Text("q");
        if (text is not null && string.IsNullOrWhiteSpace(text))
        {
            text = null;
        }

        var query = new EventQuery(tenantId)
        {
            From = from,
            To = to,
            ActorId = Text("actor"),
            ActorType = Text("actorType"),
            Action = action,
            ActionIsPrefix = prefix,
            TargetType = Text("targetType"),
            TargetId = Text("targetId"),
            Outcome = outcome,
            Text = text,
            Ascending = order == "asc",
            Limit = limit,
        };

        // Read before the errors are judged: a cursor that is too long or holds a control character is a 400, not page 1.
        var cursor = Text("cursor");

        // The cursor is bound to the tenant and every filter (not to limit or verify, which may change between pages).
        var digest = string.Join('\u001f', tenantId, from?.UtcTicks, to?.UtcTicks, query.ActorId, query.ActorType, action, prefix, query.TargetType, query.TargetId, outcome, text, order);
        return (errors.Count == 0 ? query : null, digest, verify, cursor, errors);
    }
}
