namespace Atp.Core.Signatures;

/// <summary>RFC 9110 §5.6.2 token characters, shared by field names and RFC 8941 tokens.</summary>
internal static class HttpToken
{
    public static bool IsTchar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';
}
