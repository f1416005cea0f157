using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Integrity;

namespace Atp.Core.Classification;

/// <summary>The drafts of one request with their classified values sealed, and the data keys the append must store with them.</summary>
public sealed record SealedDrafts(IReadOnlyList<EventDraft> Drafts, IReadOnlyList<WrappedDataKey> NewKeys);

/// <summary>
/// What is sealed in one tenant's events: the envelope's personal fields when the cell seals them, and the pointers into
/// <c>data</c> the tenant's policy classifies (docs/classification.md).
/// </summary>
public sealed class SealingPlan
{
    private readonly HashSet<string> _classified;

    // Every proper prefix of a classified pointer: the parts of the data worth walking into.
    private readonly HashSet<string> _enclosing;

    public SealingPlan(bool envelope, IReadOnlyList<string> dataPointers, string? subjectTargetType = null)
    {
        ArgumentNullException.ThrowIfNull(dataPointers);
        Envelope = envelope;
        DataPointers = dataPointers;
        SubjectTargetType = subjectTargetType;
        _classified = new(dataPointers, StringComparer.Ordinal);
        _enclosing = new(dataPointers.SelectMany(p => Enumerable.Range(1, p.Length - 1).Where(i => p[i] == '/').Select(i => p[..i])), StringComparer.Ordinal);
    }

    /// <summary>The envelope's personal fields only (a cell that seals them, a tenant that classifies no data field).</summary>
    public static SealingPlan EnvelopeOnly { get; } = new(true, []);

    /// <summary>Whether the envelope's personal fields are sealed.</summary>
    public bool Envelope { get; }

    /// <summary>The classified pointers into <c>data</c> (each under <c>/data/</c>).</summary>
    public IReadOnlyList<string> DataPointers { get; }

    /// <summary>The target type whose first target in an event is the subject of its classified data fields; null: the actor.</summary>
    public string? SubjectTargetType { get; }

    /// <summary>The data subject whose key seals the draft's classified data fields.</summary>
    public string DataSubjectOf(EventDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (SubjectTargetType is { } type)
        {
            foreach (var target in draft.Targets)
            {
                if (string.Equals(target.Type, type, StringComparison.Ordinal))
                {
                    return target.Id;
                }
            }
        }

        return draft.Actor.Id;
    }

    /// <summary>Whether the plan seals nothing.</summary>
    public bool IsEmpty => !Envelope && DataPointers.Count == 0;

    /// <summary>Whether the value at <paramref name="location"/> is sealed.</summary>
    public bool IsClassified(string location) => _classified.Contains(location);

    /// <summary>Whether a sealed value lies inside the value at <paramref name="location"/>.</summary>
    public bool Encloses(string location) => _enclosing.Contains(location);
}

/// <summary>
/// Replaces every classified value of an event, before its leaf is written, by a <see cref="FieldToken"/> under the data
/// key of the event's subject (the actor id). The envelope's own personal fields are classified <c>pii</c> by default:
/// <c>/actor/name</c>, <c>/context/ip</c>, <c>/context/userAgent</c>.
/// </summary>
/// <remarks>
/// Nonces are random, except for events with a client-assigned id: those may be re-sent, and a re-send must make the
/// same leaf content or it would be refused as a different event under a used id. Their nonce is synthetic, the first
/// 12 bytes of HMAC-SHA256 (under a key derived from the data key) of event id ‖ pointer ‖ 0x00 ‖ plaintext, so only
/// the very same value of the same field of the same event ever meets the same nonce, and then seals identically.
/// </remarks>
public sealed class FieldSealer(DataKeyRing ring)
{
    public const string ActorName = "/actor/name";
    public const string ContextIp = "/context/ip";
    public const string ContextUserAgent = "/context/userAgent";

    // The canonical JSON of the value being sealed; cleared after each use.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_plaintext;

    /// <summary>The pointers classified <c>pii</c> in every tenant.</summary>
    public static IReadOnlyList<string> DefaultPii { get; } = [ActorName, ContextIp, ContextUserAgent];

    public DataKeyRing Ring => ring;

    /// <summary>Seals the envelope's personal fields of each draft.</summary>
    public ValueTask<SealedDrafts> SealAsync(string tenantId, IReadOnlyList<EventDraft> drafts, CancellationToken cancellationToken) =>
        SealAsync(tenantId, drafts, SealingPlan.EnvelopeOnly, cancellationToken);

    /// <summary>
    /// Seals what <paramref name="plan"/> names in each draft: the envelope's fields under the data key of the draft's
    /// actor, the classified data fields under that of the plan's data subject (<see cref="SealingPlan.DataSubjectOf"/>).
    /// </summary>
    public async ValueTask<SealedDrafts> SealAsync(string tenantId, IReadOnlyList<EventDraft> drafts, SealingPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        ArgumentNullException.ThrowIfNull(plan);
        var result = new EventDraft[drafts.Count];
        List<WrappedDataKey>? newKeys = null;
        for (var i = 0; i < drafts.Count; i++)
        {
            var draft = drafts[i];
            var envelope = plan.Envelope && (draft.Actor.Name is not null || draft.Context is { Ip: not null } or { UserAgent: not null });
            var data = plan.DataPointers.Count > 0 ? ClassifiedData(draft, plan) : null;
            if (!envelope && data is null)
            {
                result[i] = draft;
                continue;
            }

            // The envelope's fields are the actor's; the data fields are the subject's the plan names (the actor's too
            // unless the policy names a target type and the event has such a target).
            var sealedDraft = envelope ? SealDraft(await KeyOfAsync(tenantId, draft.Actor.Id, newKeys ??= [], cancellationToken).ConfigureAwait(false), draft) : draft;
            result[i] = data is null
                ? sealedDraft
                : SealData(await KeyOfAsync(tenantId, plan.DataSubjectOf(draft), newKeys ??= [], cancellationToken).ConfigureAwait(false), sealedDraft, data.Value.Canonical, data.Value.Found);
        }

        return new SealedDrafts(result, newKeys ?? (IReadOnlyList<WrappedDataKey>)[]);
    }

    // The subject's data key; a key made for this request joins the keys the append must store (once each).
    private async ValueTask<DataKey> KeyOfAsync(string tenantId, string subject, List<WrappedDataKey> newKeys, CancellationToken cancellationToken)
    {
        var key = await ring.ForSubjectAsync(tenantId, subject, cancellationToken).ConfigureAwait(false);
        if (key.NewlyWrapped is { } wrapped && newKeys.TrueForAll(k => k.KeyId != wrapped.KeyId))
        {
            newKeys.Add(wrapped);
        }

        return key;
    }

    // One random draw for the event's three nonces (unused for a client-assigned id, whose nonces are synthetic).
    private static EventDraft SealDraft(DataKey key, EventDraft draft)
    {
        Span<byte> nonces = stackalloc byte[3 * FieldToken.NonceSize];
        if (draft.Id is null)
        {
            RandomNumberGenerator.Fill(nonces);
        }

        var actor = draft.Actor.Name is { } name ? draft.Actor with { Name = Seal(key, draft.Id, ActorName, name, nonces[..12]) } : draft.Actor;
        var context = draft.Context is { } c
            ? c with
            {
                Ip = c.Ip is { } ip ? Seal(key, draft.Id, ContextIp, ip, nonces[12..24]) : null,
                UserAgent = c.UserAgent is { } agent ? Seal(key, draft.Id, ContextUserAgent, agent, nonces[24..]) : null,
            }
            : null;
        return draft with { Actor = actor, Context = context };
    }

    // The draft's canonical data and the byte ranges of the classified values in it (in order, none inside another;
    // null values left out); null when none is present.
    private static (ReadOnlyMemory<byte> Canonical, List<(string Pointer, int Start, int End)> Found)? ClassifiedData(EventDraft draft, SealingPlan plan)
    {
        ReadOnlyMemory<byte> canonical;
        if (!draft.CanonicalData.IsEmpty)
        {
            canonical = draft.CanonicalData;
        }
        else if (draft.Data is { ValueKind: JsonValueKind.Object } data)
        {
            var written = new ArrayBufferWriter<byte>(256);
            JsonCanonicalizer.Write(data, written);
            canonical = written.WrittenMemory;
        }
        else
        {
            return null;
        }

        var found = new List<(string, int, int)>();
        var reader = new Utf8JsonReader(canonical.Span);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        Walk(ref reader, Data, plan, found);
        return found.Count == 0 ? null : (canonical, found);
    }

    private const string Data = "/data";

    // Reader on the first token of the value at pointer; leaves it on the value's last token.
    private static void Walk(ref Utf8JsonReader reader, string pointer, SealingPlan plan, List<(string, int, int)> found)
    {
        if (plan.IsClassified(pointer))
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            if (reader.TokenType != JsonTokenType.Null)
            {
                found.Add((pointer, start, (int)reader.BytesConsumed));
            }

            return;
        }

        if (!plan.Encloses(pointer))
        {
            reader.Skip();
            return;
        }

        if (reader.TokenType == JsonTokenType.StartObject)
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                reader.Read();
                Walk(ref reader, pointer + "/" + name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal), plan, found);
            }
        }
        else if (reader.TokenType == JsonTokenType.StartArray)
        {
            for (var i = 0; reader.Read() && reader.TokenType != JsonTokenType.EndArray; i++)
            {
                Walk(ref reader, pointer + "/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), plan, found);
            }
        }
    }

    // Each classified value becomes the token of its canonical JSON, spliced into the canonical data in its place: a
    // token is ASCII with nothing to escape and no member name changes, so the result is still RFC 8785 canonical.
    private static EventDraft SealData(DataKey key, EventDraft draft, ReadOnlyMemory<byte> canonical, List<(string Pointer, int Start, int End)> found)
    {
        Span<byte> nonce = stackalloc byte[FieldToken.NonceSize];
        var output = new ArrayBufferWriter<byte>(canonical.Length + (found.Count * 96));
        var source = canonical.Span;
        var at = 0;
        foreach (var (pointer, start, end) in found)
        {
            if (draft.Id is null)
            {
                RandomNumberGenerator.Fill(nonce);
            }

            var token = SealCanonical(key, draft.Id, pointer, source[start..end], nonce);
            output.Write(source[at..start]);
            output.Write("\""u8);
            var tokenBytes = output.GetSpan(token.Length);
            var written = Encoding.ASCII.GetBytes(token, tokenBytes);
            output.Advance(written);
            output.Write("\""u8);
            at = end;
        }

        output.Write(source[at..]);
        var sealedCanonical = output.WrittenMemory.ToArray();
        using var sealedData = JsonDocument.Parse(sealedCanonical);
        return draft with { Data = sealedData.RootElement.Clone(), CanonicalData = sealedCanonical };
    }

    private static string Seal(DataKey key, Guid? clientId, string pointer, string value, Span<byte> nonce)
    {
        var plaintext = t_plaintext ??= new ArrayBufferWriter<byte>(256);
        plaintext.ResetWrittenCount();
        JsonCanonicalizer.WriteString(value, plaintext);
        var token = SealCanonical(key, clientId, pointer, plaintext.WrittenSpan, nonce);

        // The value in clear is not left behind in a buffer that outlives the request.
        plaintext.Clear();
        if (plaintext.Capacity > 4096)
        {
            t_plaintext = null;
        }

        return token;
    }

    private static string SealCanonical(DataKey key, Guid? clientId, string pointer, ReadOnlySpan<byte> plaintext, Span<byte> nonce)
    {
        if (clientId is { } id)
        {
            using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.NonceKey);
            Span<byte> idBytes = stackalloc byte[16];
            id.TryWriteBytes(idBytes, bigEndian: true, out _);
            mac.AppendData(idBytes);
            mac.AppendData(Encoding.UTF8.GetBytes(pointer));
            mac.AppendData([0]);
            mac.AppendData(plaintext);
            Span<byte> digest = stackalloc byte[HMACSHA256.HashSizeInBytes];
            mac.GetHashAndReset(digest);
            digest[..FieldToken.NonceSize].CopyTo(nonce);
        }

        return FieldToken.Seal(key, nonce, pointer, plaintext);
    }
}
