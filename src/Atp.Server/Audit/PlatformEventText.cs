using System.Globalization;
using System.Text;
using Atp.Core.Events;

namespace Atp.Server.Audit;

/// <summary>
/// Holds what goes into the platform audit log to the rules of tenant events (<see cref="EventReader"/>): text of
/// 1 to <see cref="EventReader.MaxTextLength"/> characters without control characters. Unlike a tenant's request, the
/// values come from outside callers (an OIDC <c>sub</c>, a User-Agent, a tenant id in a refused path) and must still
/// be recorded, so they are escaped rather than refused: a control character becomes the text <c>\uXXXX</c>, an
/// unpaired surrogate <c>\uFFFD</c>, and an overlong value is cut with an ellipsis.
/// </summary>
internal static class PlatformEventText
{
    private const string Empty = "-";

    public static Party Party(Party party) =>
        new(Clean(party.Type, EventReader.MaxTextLength), Clean(party.Id, EventReader.MaxTextLength), party.Name is null ? null : Clean(party.Name, EventReader.MaxTextLength));

    public static EventContext? Context(EventContext? context) => context is null
        ? null
        : new EventContext(Optional(context.Ip, EventReader.MaxTextLength), Optional(context.UserAgent, EventReader.MaxUserAgentLength), Optional(context.RequestId, EventReader.MaxTextLength));

    public static IReadOnlyDictionary<string, string>? Data(IReadOnlyDictionary<string, string>? data) =>
        data?.ToDictionary(p => Clean(p.Key, EventReader.MaxTextLength), p => Clean(p.Value, EventReader.MaxDataBytes / 8), StringComparer.Ordinal);

    /// <summary>The value with control characters and unpaired surrogates escaped, 1 to <paramref name="maxLength"/> characters.</summary>
    public static string Clean(string value, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return Empty;
        }

        StringBuilder? escaped = null;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]);
            string? replacement = char.IsControl(c) ? string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}")
                : char.IsSurrogate(c) && !pair ? "\\uFFFD"
                : null;
            if (replacement is not null)
            {
                escaped ??= new StringBuilder(value.Length + 8).Append(value, 0, i);
                escaped.Append(replacement);
                continue;
            }

            escaped?.Append(c);
            if (pair)
            {
                escaped?.Append(value[i + 1]);
                i++;
            }
        }

        var clean = escaped?.ToString() ?? value;
        if (clean.Length <= maxLength)
        {
            return clean;
        }

        // Cut before the ellipsis, never between the halves of a surrogate pair.
        var cut = maxLength - 1;
        if (char.IsLowSurrogate(clean[cut]) && char.IsHighSurrogate(clean[cut - 1]))
        {
            cut--;
        }

        return string.Concat(clean.AsSpan(0, cut), "…");
    }

    private static string? Optional(string? value, int maxLength) => value is null ? null : Clean(value, maxLength);
}
