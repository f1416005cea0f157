namespace Atp.Integrity;

/// <summary>C2SP signed-note key names: non-empty, no Unicode spaces, no '+' (the separator of key strings).</summary>
internal static class KeyName
{
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (c == '+' || char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }
}
