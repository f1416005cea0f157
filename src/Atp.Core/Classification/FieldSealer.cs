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

            using var aes = new AesGcm(key.Key, FieldToken.TagSize);
            var actor = draft.Actor.Name is { } name ? draft.Actor with { Name = Seal(aes, key, tenantId, draft.Id, ActorName, name) } : draft.Actor;
            var context = draft.Context is { } c
                ? c with
                {
                    Ip = c.Ip is { } ip ? Seal(aes, key, tenantId, draft.Id, ContextIp, ip) : null,
                    UserAgent = c.UserAgent is { } agent ? Seal(aes, key, tenantId, draft.Id, ContextUserAgent, agent) : null,
                }
                : null;
            result[i] = draft with { Actor = actor, Context = context };
        }

        return new SealedDrafts(result, newKeys ?? (IReadOnlyList<WrappedDataKey>)[]);
    }

    private static string Seal(AesGcm aes, DataKey key, string tenantId, Guid? clientId, string pointer, string value)
    {
        var plaintext = new ArrayBufferWriter<byte>(value.Length + 8);
        JsonCanonicalizer.WriteString(value, plaintext);
        Span<byte> nonce = stackalloc byte[FieldToken.NonceSize];
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
        else
        {
            RandomNumberGenerator.Fill(nonce);
        }

        return FieldToken.Seal(aes, nonce, tenantId, key.KeyId, pointer, plaintext.WrittenSpan);
    }
}
