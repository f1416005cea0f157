using System.Security.Cryptography;
using Atp.Core.Storage;

namespace Atp.Server.Gateway;

/// <summary>
/// Rotation of the cell's key-encryption key without downtime: a new KEK becomes current (new secrets are sealed under
/// it), every stored signing secret is re-sealed under it with a compare-and-swap per key, and a KEK no stored secret
/// uses any more can be retired. Signed requests keep working throughout because every known KEK still opens its blobs.
/// </summary>
internal sealed partial class KekRotation(FileSecretSealer sealer, ITenantStore tenants, ILogStore logs, ILogger<KekRotation> logger) : IDisposable
{
    // One rotation, re-wrap or retirement at a time on this node: a retirement must not race a re-wrap's count.
    private readonly SemaphoreSlim _gate = new(1, 1);

    public void Dispose() => _gate.Dispose();

    public async Task<KekStatusResponse> StatusAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CountAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Adds a KEK, makes it current and re-seals every stored secret under it.</summary>
    public async Task<KekRewrapResponse> RotateAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var previous = sealer.CurrentKekId;
            var added = sealer.AddKek();
            LogRotated(logger, FileSecretSealer.FormatId(previous), FileSecretSealer.FormatId(added));
            return await RewrapLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Re-seals under the current KEK what is still sealed under another (e.g. secrets another node created meanwhile).</summary>
    public async Task<KekRewrapResponse> RewrapAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RewrapLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Retires a KEK: null when done, else why not (<c>not-found</c>, <c>kek-current</c>, <c>kek-in-use</c>).</summary>
    public async Task<(string Problem, string Detail)?> RetireAsync(uint kekId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var status = await CountAsync(cancellationToken).ConfigureAwait(false);
            var id = FileSecretSealer.FormatId(kekId);
            var kek = status.Keks.SingleOrDefault(k => k.Id == id);
            if (kek is null)
            {
                return ("not-found", $"There is no key-encryption key {id}.");
            }

            if (kek.Current)
            {
                return ("kek-current", $"The key-encryption key {id} is current; rotate to a new one first.");
            }

            if (kek.SealedSecrets > 0)
            {
                return ("kek-in-use", $"{kek.SealedSecrets} stored secrets are still sealed under the key-encryption key {id}; re-wrap them first (POST /v1/admin/kek/rewrap).");
            }

            if (!sealer.RetireKek(kekId))
            {
                return ("kek-current", $"The key-encryption key {id} became current on another node; rotate again first.");
            }

            LogRetired(logger, id);
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<KekRewrapResponse> RewrapLockedAsync(CancellationToken cancellationToken)
    {
        int rewrapped = 0, changed = 0, unreadable = 0;
        await foreach (var (tenantId, key, blob) in SealedSecretsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (FileSecretSealer.TryGetKekId(blob, out var kekId) && kekId == sealer.CurrentKekId && !FileSecretSealer.IsLegacy(blob))
            {
                continue;
            }

            var length = FileSecretSealer.SecretLength(blob);
            if (length < 0)
            {
                unreadable++;
                continue;
            }

            var secret = new byte[length];
            try
            {
                if (!sealer.TryUnseal(blob, key, secret))
                {
                    unreadable++;
                    continue;
                }

                // Compare-and-swap: a key rotated or re-wrapped by someone else since it was read keeps its new blob.
                if (await tenants.ReplaceSealedSigningSecretAsync(tenantId, key, blob, sealer.Seal(secret, key), cancellationToken).ConfigureAwait(false))
                {
                    rewrapped++;
                }
                else
                {
                    changed++;
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }

        if (unreadable > 0)
        {
            LogUnreadable(logger, unreadable);
        }

        var status = await CountAsync(cancellationToken).ConfigureAwait(false);
        return new KekRewrapResponse(status.CurrentKekId, rewrapped, changed, unreadable, status.Keks);
    }

    private async Task<KekStatusResponse> CountAsync(CancellationToken cancellationToken)
    {
        var counts = sealer.KnownKekIds.ToDictionary(id => id, _ => 0);
        var legacy = 0;
        var unreadable = 0;
        await foreach (var (_, _, blob) in SealedSecretsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!FileSecretSealer.TryGetKekId(blob, out var kekId))
            {
                unreadable++;
                continue;
            }

            legacy += FileSecretSealer.IsLegacy(blob) ? 1 : 0;
            counts[kekId] = counts.GetValueOrDefault(kekId) + 1;
        }

        var current = sealer.CurrentKekId;
        var keks = counts.OrderBy(c => c.Key != current).ThenBy(c => c.Key)
            .Select(c => new KekInfo(FileSecretSealer.FormatId(c.Key), c.Key == current, sealer.KnownKekIds.Contains(c.Key), c.Value))
            .ToArray();
        return new KekStatusResponse(FileSecretSealer.FormatId(current), keks, legacy, unreadable);
    }

    // Only tenant keys carry signing secrets (platform-admin keys are never signing keys); every tenant has a tree head.
    private async IAsyncEnumerable<(string TenantId, string KeyId, byte[] Blob)> SealedSecretsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var log in await logs.ListLogSizesAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var key in await tenants.ListApiKeysAsync(log.TenantId, cancellationToken).ConfigureAwait(false))
            {
                if (key.SealedSigningSecret is { } blob)
                {
                    yield return (log.TenantId, key.Id, blob);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rotated the key-encryption key from {Previous} to {Current}; re-sealing the stored signing secrets")]
    private static partial void LogRotated(ILogger logger, string previous, string current);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retired the key-encryption key {KekId}")]
    private static partial void LogRetired(ILogger logger, string kekId);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} stored signing secrets open under no known key-encryption key; their keys cannot verify signed requests")]
    private static partial void LogUnreadable(ILogger logger, int count);
}

/// <summary>The cell's key-encryption keys and how many stored secrets each seals.</summary>
internal sealed record KekStatusResponse(string CurrentKekId, IReadOnlyList<KekInfo> Keks, int LegacyFormatSecrets, int UnreadableSecrets);

/// <summary>One KEK: its id, whether it seals new secrets, whether this node holds it, and how many stored secrets it seals.</summary>
internal sealed record KekInfo(string Id, bool Current, bool Known, int SealedSecrets);

/// <summary>What a rotation or re-wrap did, and the KEKs afterwards.</summary>
internal sealed record KekRewrapResponse(string CurrentKekId, int Rewrapped, int ChangedMeanwhile, int Unreadable, IReadOnlyList<KekInfo> Keks);
