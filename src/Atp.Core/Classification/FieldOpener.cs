using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Pointer;

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

    private static readonly JsonPointer[] Pointers = [.. FieldSealer.DefaultPii.Select(p => JsonPointer.Parse(p))];

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

            JsonObject? root;
            try
            {
                root = JsonNode.Parse(leaf.Span) as JsonObject;
            }
            catch (JsonException)
            {
                return null;
            }

            if (root is null)
            {
                return null;
            }

            Dictionary<string, string>? opened = null;
            List<UnopenedField>? unopened = null;
            foreach (var (pointer, node, token) in Candidates(root))
            {
                var (clear, reason) = await OpenAsync(pointer, token, cancellationToken).ConfigureAwait(false);
                if (clear is null)
                {
                    (unopened ??= []).Add(new UnopenedField(pointer, reason));
                    continue;
                }

                node.ReplaceWith(clear);
                (opened ??= new(StringComparer.Ordinal))[pointer] = token;
            }

            if (opened is null && unopened is null)
            {
                return null;
            }

            var buffer = new ArrayBufferWriter<byte>(leaf.Length + 256);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                root.WriteTo(writer);
            }

            JsonElement shown;
            using (var document = JsonDocument.Parse(buffer.WrittenMemory))
            {
                shown = document.RootElement.Clone();
            }

            // The clear text leaves with the response; no second copy is left in a buffer for the collector.
            buffer.Clear();
            return new OpenedEvent(shown, opened ?? (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(), unopened ?? (IReadOnlyList<UnopenedField>)[]);
        }

        // The tokens at the envelope's classified pointers, then every token in the data object: a tenant's policy
        // classifies data fields by pointer and may change, so each token is opened where it is found; its associated
        // data names the pointer it was sealed for, so a token moved elsewhere does not open.
        private static List<(string Pointer, JsonNode Node, string Token)> Candidates(JsonObject root)
        {
            var found = new List<(string, JsonNode, string)>();
            for (var i = 0; i < Pointers.Length; i++)
            {
                if (Pointers[i].TryEvaluate(root, out var node) && node is JsonValue value && value.TryGetValue<string>(out var token) && FieldToken.IsToken(token))
                {
                    found.Add((ClassifiedPointers[i], node, token));
                }
            }

            if (root["data"] is JsonObject data)
            {
                Walk(data, "/data", found, depth: 0);
            }

            return found;
        }

        private static void Walk(JsonNode node, string pointer, List<(string, JsonNode, string)> found, int depth)
        {
            // Event data is at most 64 KiB and its nesting bounded by the parser's depth limit; this guards the recursion anyway.
            if (depth > 64)
            {
                return;
            }

            switch (node)
            {
                case JsonObject members:
                    foreach (var (name, child) in members)
                    {
                        if (child is not null)
                        {
                            Walk(child, pointer + "/" + name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal), found, depth + 1);
                        }
                    }

                    break;
                case JsonArray items:
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (items[i] is { } child)
                        {
                            Walk(child, pointer + "/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), found, depth + 1);
                        }
                    }

                    break;
                case JsonValue value when value.TryGetValue<string>(out var token) && FieldToken.IsToken(token):
                    found.Add((pointer, node, token));
                    break;
            }
        }

        private async ValueTask<(JsonNode? Clear, UnopenedReason Reason)> OpenAsync(string pointer, string token, CancellationToken cancellationToken)
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

            try
            {
                return (JsonNode.Parse(plaintext), UnopenedReason.NotJson);
            }
            catch (JsonException)
            {
                return (null, UnopenedReason.NotJson);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plaintext);
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
