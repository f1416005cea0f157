using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Atp.Core.Events;
using Atp.Integrity;

namespace Atp.Core.Classification;

/// <summary>The drafts of one request with their classified values sealed, and the data keys the append must store with them.</summary>
public sealed record SealedDrafts(IReadOnlyList<EventDraft> Drafts, IReadOnlyList<WrappedDataKey> NewKeys);

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

    public async ValueTask<SealedDrafts> SealAsync(string tenantId, IReadOnlyList<EventDraft> drafts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        var result = new EventDraft[drafts.Count];
        List<WrappedDataKey>? newKeys = null;
        for (var i = 0; i < drafts.Count; i++)
        {
            var draft = drafts[i];
            if (draft.Actor.Name is null && draft.Context is not { Ip: not null } and not { UserAgent: not null })
            {
                result[i] = draft;
                continue;
            }

            var key = await ring.ForSubjectAsync(tenantId, draft.Actor.Id, cancellationToken).ConfigureAwait(false);
            if (key.NewlyWrapped is { } wrapped && (newKeys ??= []).TrueForAll(k => k.KeyId != wrapped.KeyId))
            {
                newKeys.Add(wrapped);
            }

            result[i] = SealDraft(key, draft);
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

    private static string Seal(DataKey key, Guid? clientId, string pointer, string value, Span<byte> nonce)
    {
        var plaintext = t_plaintext ??= new ArrayBufferWriter<byte>(256);
        plaintext.ResetWrittenCount();
        JsonCanonicalizer.WriteString(value, plaintext);
        if (clientId is { } id)
        {
            using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.NonceKey);
            Span<byte> idBytes = stackalloc byte[16];
            id.TryWriteBytes(idBytes, bigEndian: true, out _);
            mac.AppendData(idBytes);
            mac.AppendData(Encoding.UTF8.GetBytes(pointer));
            mac.AppendData([0]);
            mac.AppendData(plaintext.WrittenSpan);
            Span<byte> digest = stackalloc byte[HMACSHA256.HashSizeInBytes];
            mac.GetHashAndReset(digest);
            digest[..FieldToken.NonceSize].CopyTo(nonce);
        }

        var token = FieldToken.Seal(key, nonce, pointer, plaintext.WrittenSpan);

        // The value in clear is not left behind in a buffer that outlives the request.
        plaintext.Clear();
        if (plaintext.Capacity > 4096)
        {
            t_plaintext = null;
        }

        return token;
    }
}
