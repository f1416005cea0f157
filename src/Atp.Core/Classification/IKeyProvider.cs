namespace Atp.Core.Classification;

/// <summary>
/// Where a tenant's key-encryption key (KEK) and blind-index key live. ATP never stores a data key in clear: it asks
/// the provider to wrap a new one and to unwrap a stored one. The default provider keeps owner-only key files under
/// the data directory; a PKCS#11, Vault Transit or cloud KMS provider implements the same three calls (wrap and unwrap
/// become remote operations whose KEK never leaves the device; the blind-index key is itself kept wrapped).
/// </summary>
public interface IKeyProvider
{
    /// <summary>Encrypts <paramref name="dataKey"/> under the tenant's KEK, bound to <paramref name="keyId"/>; creates the KEK on first use.</summary>
    ValueTask<byte[]> WrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> dataKey, CancellationToken cancellationToken);

    /// <summary>The data key in <paramref name="wrapped"/>; throws <see cref="System.Security.Cryptography.CryptographicException"/> when it does not open for this tenant and key id.</summary>
    ValueTask<byte[]> UnwrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> wrapped, CancellationToken cancellationToken);

    /// <summary>The tenant's secret key for keyed hashes (key ids, blind indexes); created on first use, never rotated (ids derived from it are stored).</summary>
    ValueTask<byte[]> GetBlindIndexKeyAsync(string tenantId, CancellationToken cancellationToken);
}
