namespace Atp.Core.Classification;

/// <summary>The store's wrapped data keys; they are written with the append that first needs them (<c>AppendRequest.DataKeys</c>).</summary>
public interface IDataKeyStore
{
    /// <summary>The wrapped data key stored for the tenant under <paramref name="keyId"/>, or null.</summary>
    Task<byte[]?> FindDataKeyAsync(string tenantId, string keyId, CancellationToken cancellationToken);
}
