namespace Atp.Integrity;

/// <summary>
/// Standard base64 (RFC 4648 §4) accepted only in its one canonical spelling. .NET's decoder skips whitespace and
/// ignores non-zero padding bits; signed formats must not have two spellings of the same bytes, so the decoded value
/// is re-encoded and compared.
/// </summary>
internal static class StrictBase64
{
    public static bool TryDecode(ReadOnlySpan<char> text, out byte[] bytes)
    {
        bytes = [];
        if (text.Length == 0 || text.Length % 4 != 0)
        {
            return false;
        }

        var buffer = new byte[text.Length / 4 * 3];
        if (!Convert.TryFromBase64Chars(text, buffer, out var written))
        {
            return false;
        }

        Span<char> again = text.Length <= 512 ? stackalloc char[text.Length] : new char[text.Length];
        if (!Convert.TryToBase64Chars(buffer.AsSpan(0, written), again, out var chars) || !again[..chars].SequenceEqual(text))
        {
            return false;
        }

        bytes = written == buffer.Length ? buffer : buffer.AsSpan(0, written).ToArray();
        return true;
    }
}
