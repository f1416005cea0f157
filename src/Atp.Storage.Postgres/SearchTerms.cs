using System.Globalization;
using System.Text;
using Atp.Core.Query;

namespace Atp.Storage.Postgres;

/// <summary>
/// The lexemes an event is indexed under (<c>event_index.terms</c>, one GIN index) and the <c>tsquery</c> of a search.
/// One inverted index answers the actor, action, target and word filters, alone or combined, at the cost of a
/// handful of GIN entries per event (batched by its pending list) instead of a B-tree per filter and a row per target.
/// </summary>
/// <remarks>
/// Lexemes are stored verbatim (<c>array_to_tsvector</c>; no parser or dictionary touches them), each with a prefix
/// naming its field: <c>a:</c> actor id, <c>c:</c> action, <c>y:</c> target type, <c>i:</c> target id, <c>t:</c> target
/// type and id, <c>w:</c> a word of the names and the action. Event validation refuses control characters in every
/// one of these fields, so the two separators below cannot occur inside a value.
/// </remarks>
internal static class SearchTerms
{
    /// <summary>Between the lexemes of one event in the text sent to the database (split there by <c>string_to_array</c>).</summary>
    public const char LexemeSeparator = '\u001f';

    private const char TypeIdSeparator = '\u001e';

    /// <summary>The event's lexemes, separated by <see cref="LexemeSeparator"/>.</summary>
    public static string Of(LeafFields fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var terms = new StringBuilder(256);
        void Add(string prefix, string value, string? second = null)
        {
            if (terms.Length > 0)
            {
                terms.Append(LexemeSeparator);
            }

            terms.Append(prefix).Append(value);
            if (second is not null)
            {
                terms.Append(TypeIdSeparator).Append(second);
            }
        }

        Add("a:", fields.ActorId);
        Add("c:", fields.Action);
        foreach (var (type, id) in fields.Targets)
        {
            Add("y:", type);
            Add("i:", id);
            Add("t:", type, id);
        }

        foreach (var word in Words(fields.Text))
        {
            Add("w:", word);
        }

        return terms.ToString();
    }

    /// <summary>
    /// The <c>tsquery</c> (all terms must match) for the query's actor, action, target and text filters; null when it
    /// has none. <paramref name="matchesNothing"/> is set when the text filter has no word at all.
    /// </summary>
    public static string? Query(EventQuery query, out bool matchesNothing)
    {
        ArgumentNullException.ThrowIfNull(query);
        matchesNothing = false;
        var terms = new List<string>();
        if (query.ActorId is { } actor)
        {
            terms.Add(Quote("a:" + actor));
        }

        if (query.Action is { } action)
        {
            terms.Add(query.ActionIsPrefix ? Quote("c:" + action) + ":*" : Quote("c:" + action));
        }

        switch (query.TargetType, query.TargetId)
        {
            case ({ } type, { } id):
                terms.Add(Quote("t:" + type + TypeIdSeparator + id));
                break;
            case ({ } type, null):
                terms.Add(Quote("y:" + type));
                break;
            case (null, { } id):
                terms.Add(Quote("i:" + id));
                break;
        }

        if (query.Text is { } text)
        {
            var words = Words(text).ToList();
            matchesNothing = words.Count == 0;
            terms.AddRange(words.Select(w => Quote("w:" + w)));
        }

        return terms.Count == 0 ? null : string.Join(" & ", terms);
    }

    /// <summary>The <c>tsquery</c> of the events about a data subject: its id as the actor's, or as any target's.</summary>
    public static string Subject(string subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
        return Quote("a:" + subject) + " | " + Quote("i:" + subject);
    }

    /// <summary>The words of a text: maximal runs of letters and digits, in lower case.</summary>
    public static IEnumerable<string> Words(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var inWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (inWord && start < 0)
            {
                start = i;
            }
            else if (!inWord && start >= 0)
            {
                yield return text[start..i].ToLower(CultureInfo.InvariantCulture);
                start = -1;
            }
        }
    }

    // A tsquery operand taken verbatim: quoted, with quotes and backslashes escaped.
    private static string Quote(string lexeme) =>
        "'" + lexeme.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";
}
