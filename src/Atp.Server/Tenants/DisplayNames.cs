using System.Globalization;

namespace Atp.Server.Tenants;

/// <summary>
/// Names people read (tenant and API-key names): printable text only. Controls (NUL, newlines), format characters
/// (bidi overrides, zero-width joiners) and lone surrogates would let a name hide or reorder what an admin sees in a
/// list, a log line or the platform audit log.
/// </summary>
internal static class DisplayNames
{
    public const int MaxLength = 200;

    public const string Rule = "name: 1-200 characters of printable text (no control, format or bidi characters)";

    public static bool IsValid([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > MaxLength)
        {
            return false;
        }

        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsHighSurrogate(name[i]) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                i++;
                continue;
            }

            switch (CharUnicodeInfo.GetUnicodeCategory(name[i]))
            {
                case UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                    or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.OtherNotAssigned:
                    return false;
            }
        }

        return true;
    }
}
