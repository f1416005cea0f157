namespace Atp.Core.Classification;

/// <summary>The store's wrapped data keys; they are written with the append that first needs them (<c>AppendRequest.DataKeys</c>).</summary>
public interface IDataKeyStore
{
    /// <summary>The wrapped data key stored for the tenant under <paramref name="keyId"/>, or null.</summary>
    Task<byte[]?> FindDataKeyAsync(string tenantId, string keyId, CancellationToken cancellationToken);

    /// <summary>
    /// After an erasure (or a retention purge): removes what the engine can of destroyed keys' (purged leaves') old bytes from its files (the embedded engine
    /// copies its WAL back and truncates it). True when done; false when it could not be (readers kept it busy) or
    /// the engine cannot (PostgreSQL: see docs/classification.md, "Erasure").
    /// </summary>
    Task<bool> ScrubDestroyedKeysAsync(CancellationToken cancellationToken);
}
