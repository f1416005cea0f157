using System.Diagnostics.CodeAnalysis;

namespace Atp.Core.Signatures;

/// <summary>
/// The parts of one HTTP request that a signature can cover (RFC 9421 §2): the method, the absolute target URI, and
/// header fields. Derived components other than <c>@method</c> and <c>@target-uri</c> are computed here from the target
/// URI, so the client that signs and the server that verifies derive them by the same rule.
/// </summary>
/// <param name="method">The request method exactly as sent (RFC 9421 §2.2.1: case-sensitive), e.g. <c>POST</c>.</param>
/// <param name="targetUri">
/// The absolute URI the request was sent to, without fragment: <c>scheme://host[:port]/path[?query]</c>, with the
/// path and query exactly as in the request line (RFC 9421 §2.2.2).
/// </param>
/// <param name="fields">
/// Returns the value of the header field named by its lowercase name, several field lines joined with ", "
/// (RFC 9421 §2.1), or null when the request has no such field.
/// </param>
public sealed class SignatureComponents(string method, string targetUri, Func<string, string?> fields)
{
    private readonly string _method = method ?? throw new ArgumentNullException(nameof(method));
    private readonly string _targetUri = targetUri ?? throw new ArgumentNullException(nameof(targetUri));
    private readonly Func<string, string?> _fields = fields ?? throw new ArgumentNullException(nameof(fields));
    private Uri? _uri;

    /// <summary>The value of the component named <paramref name="name"/> (RFC 9421 §2.1, §2.2), or why there is none.</summary>
    internal bool TryResolve(string name, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? failure)
    {
        value = name.StartsWith('@') ? DerivedValue(name) : IsFieldName(name) ? _fields(name)?.Trim(' ', '\t') : null;
        if (value is null)
        {
            failure = !name.StartsWith('@') ? IsFieldName(name) ? $"the request has no \"{name}\" field" : $"\"{name}\" is not a lowercase field name"
                : IsDerived(name) ? $"derived component \"{name}\" needs an absolute target URI"
                : $"derived component \"{name}\" is not supported";
            return false;
        }

        foreach (var c in value)
        {
            // RFC 9421 §2.5: the signature base is ASCII and one line per component; anything else would change its meaning.
            if (c is (< ' ' and not '\t') or > '~')
            {
                value = null;
                failure = $"component \"{name}\" has a character that cannot be signed";
                return false;
            }
        }

        failure = null;
        return true;
    }

    private static bool IsDerived(string name) => name is "@authority" or "@scheme" or "@path" or "@query" or "@request-target";

    /// <summary>A header field name as a component: RFC 9110 token characters, lowercase (RFC 9421 §2.1).</summary>
    private static bool IsFieldName(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!HttpToken.IsTchar(c) || char.IsAsciiLetterUpper(c))
            {
                return false;
            }
        }

        return true;
    }

    private string? DerivedValue(string name)
    {
        if (name is "@method" or "@target-uri")
        {
            return name == "@method" ? _method : _targetUri;
        }

        if (!IsDerived(name))
        {
            return null;
        }

        if (_uri is null && !Uri.TryCreate(_targetUri, UriKind.Absolute, out _uri))
        {
            return null;
        }

        return name switch
        {
            // RFC 9421 §2.2.3: host and port, lowercase, default port omitted — as Uri.Authority gives them.
            "@authority" => _uri.Authority.ToLowerInvariant(),
            "@scheme" => _uri.Scheme,
            "@path" => _uri.AbsolutePath,
            // RFC 9421 §2.2.7: an absent query is "?".
            "@query" => _uri.Query.Length == 0 ? "?" : _uri.Query,
            "@request-target" => _uri.PathAndQuery,
            _ => null,
        };
    }
}
