namespace Atp.Core.Classification;

/// <summary>A data key as the store keeps it: wrapped by the tenant's KEK, named by a key id that does not reveal its subject.</summary>
public sealed record WrappedDataKey(string KeyId, byte[] Wrapped);
