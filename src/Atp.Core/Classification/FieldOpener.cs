using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Atp.Core.Classification;

/// <summary>Why a token at a classified pointer stayed sealed for a reader allowed to open it.</summary>
public enum UnopenedReason
{
    /// <summary>The value has the token's prefix but not its form.</summary>
    Malformed,

    /// <summary>The tenant holds no data key under the token's key id (erased, or the token came from elsewhere).</summary>
    KeyMissing,

    /// <summary>The tenant's stored data key did not unwrap with the tenant's KEK.</summary>
    KeyUnwrapFailed,

    /// <summary>AES-GCM refused the token: altered, moved to another field, or sealed for another tenant.</summary>
    DoesNotOpen,

    /// <summary>The token opened to bytes that are not one JSON value.</summary>
    NotJson,
}

/// <summary>A token that stayed in place: its JSON pointer (<see cref="Location"/>) and why; never its value.</summary>
public sealed record UnopenedField(string Location, UnopenedReason Reason);

/// <summary>
/// An event as a <c>pii:read</c> caller sees it: <see cref="Event"/> has the clear value in place of every token that
/// opened, and <see cref="Sealed"/> holds those tokens by JSON pointer, so the leaf can be rebuilt and hashed without the
/// clear text. Tokens that did not open stay in <see cref="Event"/> and are listed in <see cref="Unopened"/>.
/// </summary>
public sealed record OpenedEvent(JsonElement Event, IReadOnlyDictionary<string, string> Sealed, IReadOnlyList<UnopenedField> Unopened);

/// <summary>
/// The inverse of <see cref="FieldSealer"/> for the readers allowed to see classified values: finds each token at a
/// classified pointer of a leaf, opens it with the data key the tenant holds under the token's key id, and puts the
/// value it sealed back in its place.
/// </summary>
/// <remarks>
/// Keys are looked up only among the reading tenant's (<see cref="DataKeyRing.FindAsync"/> takes the tenant), and the
/// associated data binds the tenant and the pointer, so a token copied from another tenant or another field stays a
/// token. One <see cref="Pass"/> serves one response: it remembers each key id it looked up, found or not, so a page of
/// events of a subject whose key is gone costs one store read, not one per event.
/// </remarks>
public sealed class FieldOpener(DataKeyRing ring)
{
    private static readonly byte[] TokenStart = System.Text.Encoding.UTF8.GetBytes("\"" + FieldToken.Prefix);

    /// <summary>The pointers where sealed values are opened: those <see cref="FieldSealer"/> seals.</summary>
    public static IReadOnlyList<string> ClassifiedPointers => FieldSealer.DefaultPii;

    private static readonly byte[] TokenPrefix = System.Text.Encoding.UTF8.GetBytes(FieldToken.Prefix);

    /// <summary>Starts the opening of one response's events of <paramref name="tenantId"/>.</summary>
    public Pass Begin(string tenantId) => new(ring, tenantId);

    /// <summary>Whether the leaf holds anything that looks like a token (when not, there is nothing to open).</summary>
    public static bool MayHoldTokens(ReadOnlySpan<byte> leaf) => leaf.IndexOf(TokenStart) >= 0;

    /// <summary>One response's opening: the key ids it looked up, found or not.</summary>
    public sealed class Pass
    {
        private readonly DataKeyRing _ring;
        private readonly string _tenantId;
        private readonly Dictionary<string, (DataKey? Key, UnopenedReason Reason)> _keys = new(StringComparer.Ordinal);

        internal Pass(DataKeyRing ring, string tenantId)
        {
            _ring = ring;
            _tenantId = tenantId;
        }

        /// <summary>The leaf with its tokens opened, or null when it holds no token at a classified pointer.</summary>
        public async ValueTask<OpenedEvent?> OpenAsync(ReadOnlyMemory<byte> leaf, CancellationToken cancellationToken)
        {
            if (!MayHoldTokens(leaf.Span))
            {
                return null;
            }

            List<Candidate> candidates;
            try
            {
                candidates = Candidates(leaf.Span);
            }
            catch (JsonException)
            {
                return null;
            }

            if (candidates.Count == 0)
            {
                return null;
            }

            // Each token that opens is replaced in the leaf's bytes by the JSON value it sealed (its RFC 8785 form, so
            // it stands as is), and the result is parsed once: no tree of the whole event is built and written again.
            var spliced = ArrayPool<byte>.Shared.Rent(leaf.Length + 256);
            var length = 0;
            var copied = 0;
            Dictionary<string, string>? opened = null;
            List<UnopenedField>? unopened = null;
            try
            {
                foreach (var candidate in candidates)
                {
                    var (clear, reason) = await OpenAsync(candidate.Pointer, candidate.Token, cancellationToken).ConfigureAwait(false);
                    if (clear is null)
                    {
                        (unopened ??= []).Add(new UnopenedField(candidate.Pointer, reason));
                        continue;
                    }

                    try
                    {
                        var before = leaf.Span[copied..candidate.Start];
                        EnsureRoom(ref spliced, length, before.Length + clear.Length);
                        before.CopyTo(spliced.AsSpan(length));
                        length += before.Length;
                        clear.CopyTo(spliced.AsSpan(length));
                        length += clear.Length;
                        copied = candidate.End;
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(clear);
                    }

                    (opened ??= new(StringComparer.Ordinal))[candidate.Pointer] = candidate.Token;
                }

                if (opened is null && unopened is null)
                {
                    return null;
                }

                var rest = leaf.Span[copied..];
                EnsureRoom(ref spliced, length, rest.Length);
                rest.CopyTo(spliced.AsSpan(length));
                length += rest.Length;
                var reader = new Utf8JsonReader(spliced.AsSpan(0, length));
                var shown = JsonElement.ParseValue(ref reader);
                return new OpenedEvent(shown, opened ?? (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(), unopened ?? (IReadOnlyList<UnopenedField>)[]);
            }
            finally
            {
                // The clear text leaves with the response; no copy is left in a pooled buffer.
                CryptographicOperations.ZeroMemory(spliced.AsSpan(0, length));
                ArrayPool<byte>.Shared.Return(spliced);
            }
        }

        private static void EnsureRoom(ref byte[] buffer, int used, int more)
        {
            if (used + more <= buffer.Length)
            {
                return;
            }

            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(buffer.Length * 2, used + more));
            buffer.AsSpan(0, used).CopyTo(larger);
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, used));
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = larger;
        }

        /// <summary>A token in the leaf: the pointer it is at and the byte range of its JSON string, quotes included.</summary>
        private readonly record struct Candidate(string Pointer, string Token, int Start, int End);

        // The tokens at the envelope's classified pointers and every token in the data object, in the leaf's order: a
        // tenant's policy classifies data fields by pointer and may change, so each token is opened where it is found;
        // its associated data names the pointer it was sealed for, so a token moved elsewhere does not open. One
        // forward pass of a reader that keeps the path to the value it is on.
        private static List<Candidate> Candidates(ReadOnlySpan<byte> leaf)
        {
            var found = new List<Candidate>();
            var path = new List<Step>(8);
            var reader = new Utf8JsonReader(leaf, new JsonReaderOptions { MaxDepth = 64 });
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        path[^1] = path[^1] with { Name = reader.GetString() };
                        break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        NextItem(path);
                        path.Add(new Step(reader.TokenType == JsonTokenType.StartArray, -1, null));
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        path.RemoveAt(path.Count - 1);
                        break;
                    case JsonTokenType.String:
                        NextItem(path);
                        if (!reader.ValueIsEscaped && !reader.HasValueSequence && reader.ValueSpan.StartsWith(TokenPrefix) && PointerOf(path) is { } pointer)
                        {
                            var start = (int)reader.TokenStartIndex;
                            found.Add(new Candidate(pointer, reader.GetString()!, start, start + reader.ValueSpan.Length + 2));
                        }

                        break;
                    default:
                        NextItem(path);
                        break;
                }
            }

            return found;
        }

        private static void NextItem(List<Step> path)
        {
            if (path.Count > 0 && path[^1].InArray)
            {
                path[^1] = path[^1] with { Index = path[^1].Index + 1 };
            }
        }

        // The pointer of the value the reader is on, when it is one tokens are opened at: an envelope pointer of
        // FieldSealer's, or anything inside the data object. Null elsewhere (a token-like string a client put in
        // another field stays as it is).
        private static string? PointerOf(List<Step> path)
        {
            if (path.Count < 2 || path[0].InArray || path[1].InArray)
            {
                return null;
            }

            var top = path[0].Name;
            if (top == "data")
            {
                var pointer = new System.Text.StringBuilder("/data");
                for (var i = 1; i < path.Count; i++)
                {
                    pointer.Append('/');
                    if (path[i].InArray)
                    {
                        pointer.Append(path[i].Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        pointer.Append(path[i].Name!.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal));
                    }
                }

                return pointer.ToString();
            }

            if (path.Count != 2)
            {
                return null;
            }

            return (top, path[1].Name) switch
            {
                ("actor", "name") => FieldSealer.ActorName,
                ("context", "ip") => FieldSealer.ContextIp,
                ("context", "userAgent") => FieldSealer.ContextUserAgent,
                _ => null,
            };
        }

        /// <summary>One level of the path: an object (the member the reader is in) or an array (the index it is at).</summary>
        private readonly record struct Step(bool InArray, int Index, string? Name);

        // The sealed JSON value's bytes (the caller zeroes them), or why the token stays.
        private async ValueTask<(byte[]? Clear, UnopenedReason Reason)> OpenAsync(string pointer, string token, CancellationToken cancellationToken)
        {
            if (!FieldToken.TryParse(token, out var keyId, out var sealedBytes))
            {
                return (null, UnopenedReason.Malformed);
            }

            var (key, missing) = await KeyAsync(keyId, cancellationToken).ConfigureAwait(false);
            if (key is null)
            {
                return (null, missing);
            }

            if (!FieldToken.TryOpen(key, pointer, sealedBytes, out var plaintext))
            {
                return (null, UnopenedReason.DoesNotOpen);
            }

            if (IsOneJsonValue(plaintext))
            {
                return (plaintext, UnopenedReason.NotJson);
            }

            CryptographicOperations.ZeroMemory(plaintext);
            return (null, UnopenedReason.NotJson);
        }

        private static bool IsOneJsonValue(ReadOnlySpan<byte> bytes)
        {
            try
            {
                var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 64 });
                if (!reader.Read())
                {
                    return false;
                }

                reader.Skip();
                return !reader.Read();
            }
            catch (JsonException)
            {
                return false;
            }
        }

        private async ValueTask<(DataKey? Key, UnopenedReason Reason)> KeyAsync(string keyId, CancellationToken cancellationToken)
        {
            if (_keys.TryGetValue(keyId, out var known))
            {
                return known;
            }

            (DataKey?, UnopenedReason) found;
            try
            {
                var key = await _ring.FindAsync(_tenantId, keyId, cancellationToken).ConfigureAwait(false);
                found = (key, UnopenedReason.KeyMissing);
            }
            catch (CryptographicException)
            {
                // The provider could not unwrap the stored key for this tenant and key id: the field stays sealed.
                found = (null, UnopenedReason.KeyUnwrapFailed);
            }

            _keys[keyId] = found;
            return found;
        }
    }
}
