namespace Atp.Core.Storage;

/// <summary>The store could not make an append durable; the caller must not treat anything of it as stored.</summary>
public sealed class StoreUnavailableException(string message, Exception inner) : Exception(message, inner);
