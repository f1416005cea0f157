using System.Text.Json.Serialization;
using Atp.Core.Storage;
using Atp.Integrity;

namespace Atp.Storage.Sqlite;

/// <summary>Receipts as remembered with an Idempotency-Key.</summary>
internal sealed record ReceiptRecord(Guid Id, ulong Index, string LeafHash)
{
    public static ReceiptRecord From(Receipt receipt) => new(receipt.Id, receipt.Index, receipt.LeafHash.ToBase64());

    public Receipt ToReceipt() => new(Id, Index, Hash.TryParseBase64(LeafHash, out var hash) ? hash : throw new InvalidOperationException("A stored receipt has a malformed leaf hash."));
}

[JsonSerializable(typeof(ReceiptRecord[]))]
internal sealed partial class ReceiptJson : JsonSerializerContext;
