namespace Atp.Core.Storage;

/// <summary>
/// The store's disk has no room for the append; nothing of it was stored. Unlike <see cref="StoreUnavailableException"/>
/// this lasts until an operator (or another process) frees space, so callers answer with a longer <c>Retry-After</c>.
/// </summary>
public sealed class StorageFullException(string message, Exception? inner = null) : Exception(message, inner);
