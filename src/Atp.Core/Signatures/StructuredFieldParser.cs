using System.Diagnostics.CodeAnalysis;

namespace Atp.Core.Signatures;

/// <summary>
/// A strict parser for RFC 8941 Dictionaries, the only top-level structured type that Signature-Input, Signature and
/// Content-Digest use. Header values are untrusted: malformed input is a failure with a short reason, never an
/// exception, and sizes are bounded before any work grows with them.
/// </summary>
/// <remarks>
/// Stricter than RFC 8941 in two places, both refusals rather than guesses: a key repeated in a dictionary or a
/// parameter list fails (RFC 8941 would let the last one win, which lets a proxy and the server read different
/// values), and decimals are not supported (no ATP field uses them).
/// </remarks>
internal static class StructuredFieldParser
{
    /// <summary>Longest header value parsed; ATP's signature headers are a few hundred characters.</summary>
    public const int MaxLength = 8 * 1024;

    /// <summary>Most dictionary members, inner-list items, or parameters of one item.</summary>
    public const int MaxCount = 32;

    /// <summary>RFC 8941 §3.3.1: integers have at most 15 digits.</summary>
    private const int MaxIntegerDigits = 15;

    public static bool TryParseDictionary(string? text, [NotNullWhen(true)] out IReadOnlyList<SfMember>? members, [NotNullWhen(false)] out string? failure)
    {
        members = null;
        if (text is null)
        {
            failure = "missing";
            return false;
        }

        if (text.Length > MaxLength)
        {
            failure = $"longer than {MaxLength} characters";
            return false;
        }

        foreach (var c in text)
        {
            // RFC 8941 §4.2: a field value with characters outside ASCII fails; controls other than HTAB never appear in a valid one.
            if (c is (< ' ' and not '\t') or > '~')
            {
                failure = "contains a character that is not printable ASCII";
                return false;
            }
        }

        var parser = new Parser(text);
        var list = parser.ParseDictionary();
        if (list is null)
        {
            failure = $"{parser.Failure} at offset {parser.Position}";
            return false;
        }

        members = list;
        failure = null;
        return true;
    }

    /// <summary>Finds the member named <paramref name="key"/>; keys are unique because the parser refuses duplicates.</summary>
    public static SfMember? Find(IReadOnlyList<SfMember> members, string key)
    {
        foreach (var member in members)
        {
            if (member.Key == key)
            {
                return member;
            }
        }

        return null;
    }

    /// <summary>RFC 8941 §4.2: a cursor over the field value; methods return null/false and set <see cref="Failure"/> on the first error.</summary>
    private ref struct Parser(string text)
    {
        private readonly string _text = text;

        public int Position { get; private set; }

        public string? Failure { get; private set; }

        private readonly bool AtEnd => Position >= _text.Length;

        private readonly char Peek => Position < _text.Length ? _text[Position] : '\0';

        public List<SfMember>? ParseDictionary()
        {
            var members = new List<SfMember>();
            SkipSpaces();
            if (AtEnd)
            {
                return members;
            }

            while (true)
            {
                if (members.Count == MaxCount)
                {
                    return Fail<List<SfMember>>($"more than {MaxCount} members");
                }

                var key = ParseKey();
                if (key is null)
                {
                    return null;
                }

                if (Find(members, key) is not null)
                {
                    return Fail<List<SfMember>>($"duplicate key '{key}'");
                }

                var member = ParseMemberValue(key);
                if (member is null)
                {
                    return null;
                }

                members.Add(member);
                SkipWhitespace();
                if (AtEnd)
                {
                    return members;
                }

                if (Peek != ',')
                {
                    return Fail<List<SfMember>>("expected ',' between members");
                }

                Position++;
                SkipWhitespace();
                if (AtEnd)
                {
                    return Fail<List<SfMember>>("trailing comma");
                }
            }
        }

        private SfMember? ParseMemberValue(string key)
        {
            if (Peek != '=')
            {
                // RFC 8941 §3.2: a member without a value is boolean true, possibly with parameters.
                var start = Position;
                var bareParameters = ParseParameters();
                return bareParameters is null ? null : new SfMember(key, new SfItem(SfKind.Boolean, Boolean: true), null, bareParameters, _text[start..Position]);
            }

            Position++;
            var valueStart = Position;
            if (Peek == '(')
            {
                var items = ParseInnerList();
                var listParameters = items is null ? null : ParseParameters();
                return listParameters is null ? null : new SfMember(key, null, items, listParameters, _text[valueStart..Position]);
            }

            var item = ParseBareItem();
            var parameters = item is null ? null : ParseParameters();
            return parameters is null ? null : new SfMember(key, item, null, parameters, _text[valueStart..Position]);
        }

        private List<SfInnerItem>? ParseInnerList()
        {
            Position++; // '('
            var items = new List<SfInnerItem>();
            while (!AtEnd)
            {
                SkipSpaces();
                if (Peek == ')')
                {
                    Position++;
                    return items;
                }

                if (items.Count == MaxCount)
                {
                    return Fail<List<SfInnerItem>>($"more than {MaxCount} items in an inner list");
                }

                var item = ParseBareItem();
                var parameters = item is null ? null : ParseParameters();
                if (parameters is null)
                {
                    return null;
                }

                items.Add(new SfInnerItem(item!.Value, parameters));
                if (!AtEnd && Peek is not (' ' or ')'))
                {
                    return Fail<List<SfInnerItem>>("expected ' ' or ')' in an inner list");
                }
            }

            return Fail<List<SfInnerItem>>("unterminated inner list");
        }

        private List<SfParameter>? ParseParameters()
        {
            var parameters = new List<SfParameter>();
            while (Peek == ';')
            {
                Position++;
                SkipSpaces();
                if (parameters.Count == MaxCount)
                {
                    return Fail<List<SfParameter>>($"more than {MaxCount} parameters");
                }

                var key = ParseKey();
                if (key is null)
                {
                    return null;
                }

                foreach (var existing in parameters)
                {
                    if (existing.Key == key)
                    {
                        return Fail<List<SfParameter>>($"duplicate parameter '{key}'");
                    }
                }

                var value = new SfItem(SfKind.Boolean, Boolean: true);
                if (Peek == '=')
                {
                    Position++;
                    if (ParseBareItem() is not { } parsed)
                    {
                        return null;
                    }

                    value = parsed;
                }

                parameters.Add(new SfParameter(key, value));
            }

            return parameters;
        }

        private string? ParseKey()
        {
            // RFC 8941 §3.1.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
            if (!(char.IsAsciiLetterLower(Peek) || Peek == '*'))
            {
                return Fail<string>("expected a key (lowercase letter or '*')");
            }

            var start = Position;
            while (char.IsAsciiLetterLower(Peek) || char.IsAsciiDigit(Peek) || Peek is '_' or '-' or '.' or '*')
            {
                Position++;
            }

            return _text[start..Position];
        }

        private SfItem? ParseBareItem() => Peek switch
        {
            '-' or (>= '0' and <= '9') => ParseInteger(),
            '"' => ParseString(),
            ':' => ParseByteSequence(),
            '?' => ParseBoolean(),
            _ when char.IsAsciiLetter(Peek) || Peek == '*' => ParseToken(),
            _ => Fail<SfItem?>(AtEnd ? "unexpected end of input" : $"unexpected character '{Peek}'"),
        };

        private SfItem? ParseInteger()
        {
            var start = Position;
            if (Peek == '-')
            {
                Position++;
            }

            var digitsStart = Position;
            while (char.IsAsciiDigit(Peek))
            {
                Position++;
            }

            var digits = Position - digitsStart;
            if (digits == 0)
            {
                return Fail<SfItem?>("expected a digit");
            }

            if (Peek == '.')
            {
                return Fail<SfItem?>("decimals are not supported");
            }

            if (digits > MaxIntegerDigits)
            {
                return Fail<SfItem?>($"integer longer than {MaxIntegerDigits} digits");
            }

            return new SfItem(SfKind.Integer, Integer: long.Parse(_text.AsSpan(start, Position - start), System.Globalization.CultureInfo.InvariantCulture));
        }

        private SfItem? ParseString()
        {
            Position++; // '"'
            var builder = new System.Text.StringBuilder();
            while (!AtEnd)
            {
                var c = _text[Position++];
                if (c == '"')
                {
                    return new SfItem(SfKind.String, Text: builder.ToString());
                }

                if (c == '\\')
                {
                    // RFC 8941 §3.3.3: only \" and \\ are escapes.
                    if (Peek is not ('"' or '\\'))
                    {
                        return Fail<SfItem?>("invalid escape in a string");
                    }

                    c = _text[Position++];
                }
                else if (c is < ' ' or > '~')
                {
                    return Fail<SfItem?>("invalid character in a string");
                }

                builder.Append(c);
            }

            return Fail<SfItem?>("unterminated string");
        }

        private SfItem? ParseToken()
        {
            // RFC 8941 §3.3.4: tchar (RFC 9110 §5.6.2) plus ':' and '/'.
            var start = Position;
            Position++;
            while (HttpToken.IsTchar(Peek) || Peek is ':' or '/')
            {
                Position++;
            }

            return new SfItem(SfKind.Token, Text: _text[start..Position]);
        }

        private SfItem? ParseByteSequence()
        {
            Position++; // ':'
            var start = Position;
            while (char.IsAsciiLetterOrDigit(Peek) || Peek is '+' or '/' or '=')
            {
                Position++;
            }

            if (Peek != ':')
            {
                return Fail<SfItem?>(AtEnd ? "unterminated byte sequence" : "invalid character in a byte sequence");
            }

            var encoded = _text.AsSpan(start, Position - start);
            Position++;

            // RFC 8941 §3.3.5 lets a parser refuse unpadded base64; this one does, so each byte string has one spelling.
            var bytes = new byte[encoded.Length / 4 * 3];
            if (encoded.Length % 4 != 0 || !Convert.TryFromBase64Chars(encoded, bytes, out var written))
            {
                return Fail<SfItem?>("byte sequence is not padded base64");
            }

            return new SfItem(SfKind.ByteSequence, Bytes: written == bytes.Length ? bytes : bytes[..written]);
        }

        private SfItem? ParseBoolean()
        {
            Position++; // '?'
            var c = Peek;
            if (c is not ('0' or '1'))
            {
                return Fail<SfItem?>("boolean must be ?0 or ?1");
            }

            Position++;
            return new SfItem(SfKind.Boolean, Boolean: c == '1');
        }

        private void SkipSpaces()
        {
            while (Peek == ' ')
            {
                Position++;
            }
        }

        private void SkipWhitespace()
        {
            while (Peek is ' ' or '\t')
            {
                Position++;
            }
        }

        private T? Fail<T>(string reason)
        {
            Failure = reason;
            return default;
        }
    }
}
