using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Core.Events;
using Atp.Integrity;
using Json.Pointer;

namespace Atp.Core.Classification;

/// <summary>The drafts of one request with their classified values sealed, and the data keys the append must store with them.</summary>
public sealed record SealedDrafts(IReadOnlyList<EventDraft> Drafts, IReadOnlyList<WrappedDataKey> NewKeys);

/// <summary>
/// What is sealed in one tenant's events: the envelope's personal fields when the cell seals them, and the pointers into
/// <c>data</c> the tenant's policy classifies (docs/classification.md).
/// </summary>
public sealed record SealingPlan(bool Envelope, IReadOnlyList<string> DataPointers)
{
    /// <summary>The envelope's personal fields only (a cell that seals them, a tenant that classifies no data field).</summary>
    public static SealingPlan EnvelopeOnly { get; } = new(true, []);

    /// <summary>Whether the plan seals nothing.</summary>
    public bool IsEmpty => !Envelope && DataPointers.Count == 0;
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

    /// <summary>Seals what <paramref name="plan"/> names in each draft, every value under the data key of the draft's actor.</summary>
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
            var data = plan.DataPointers.Count > 0 ? ClassifiedData(draft, plan.DataPointers) : null;
            if (!envelope && data is null)
            {
                result[i] = draft;
                continue;
            }

            var key = await ring.ForSubjectAsync(tenantId, draft.Actor.Id, cancellationToken).ConfigureAwait(false);
            if (key.NewlyWrapped is { } wrapped && (newKeys ??= []).TrueForAll(k => k.KeyId != wrapped.KeyId))
            {
                newKeys.Add(wrapped);
            }

            var sealedDraft = envelope ? SealDraft(key, draft) : draft;
            result[i] = data is null ? sealedDraft : SealData(key, sealedDraft, data.Value.Root, data.Value.Found);
        }

        return new SealedDrafts(result, newKeys ?? (IReadOnlyList<WrappedDataKey>)[]);
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

    // The draft's data as a tree and the classified pointers present in it with a value other than null; null when none is.
    private static (JsonNode Root, List<(string Pointer, JsonNode Node)> Found)? ClassifiedData(EventDraft draft, IReadOnlyList<string> pointers)
    {
        if (draft.Data is not { ValueKind: JsonValueKind.Object } data)
        {
            return null;
        }

        var root = JsonNode.Parse(data.GetRawText())!;
        List<(string, JsonNode)>? found = null;
        foreach (var text in pointers)
        {
            // Policy pointers start with /data/; the data object is the event's "data" member.
            var pointer = JsonPointer.Parse(text[Data.Length..]);
            if (pointer.TryEvaluate(root, out var node) && node is not null)
            {
                (found ??= []).Add((text, node));
            }
        }

        return found is null ? null : (root, found);
    }

    private const string Data = "/data";

    // Each classified value becomes the token of its canonical JSON; the data is canonicalized again around the tokens.
    private static EventDraft SealData(DataKey key, EventDraft draft, JsonNode root, List<(string Pointer, JsonNode Node)> found)
    {
        Span<byte> nonce = stackalloc byte[FieldToken.NonceSize];
        var canonical = new ArrayBufferWriter<byte>(256);
        foreach (var (pointer, node) in found)
        {
            if (draft.Id is null)
            {
                RandomNumberGenerator.Fill(nonce);
            }

            canonical.ResetWrittenCount();
            using (var document = JsonDocument.Parse(node.ToJsonString()))
            {
                JsonCanonicalizer.Write(document.RootElement, canonical);
            }

            var token = SealCanonical(key, draft.Id, pointer, canonical.WrittenSpan, nonce);
            canonical.Clear();
            node.ReplaceWith(JsonValue.Create(token));
        }

        var output = new ArrayBufferWriter<byte>(256);
        using (var document = JsonDocument.Parse(root.ToJsonString()))
        {
            JsonCanonicalizer.Write(document.RootElement, output);
        }

        using var sealedData = JsonDocument.Parse(output.WrittenMemory);
        return draft with { Data = sealedData.RootElement.Clone(), CanonicalData = output.WrittenMemory.ToArray() };
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
