using System.Buffers.Binary;
using System.Security.Cryptography;
using Atp.Core.Events;
using Atp.Core.Storage;
using Atp.Core.Tiles;
using Atp.Integrity;
using Atp.Server.Gateway;
using Atp.Server.Problems;
using Microsoft.Net.Http.Headers;

namespace Atp.Server.Integrity;

/// <summary>
/// The tenant log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles): hash tiles from the stored Merkle nodes and entry
/// bundles of the exact leaf bytes, only within the latest signed checkpoint, so a mirror fetches 256 entries (or
/// hashes) per read instead of one. Full tiles never change and are cached for a year; partial ones are revalidated.
/// </summary>
internal static class TilesEndpoints
{
    private const string OctetStream = "application/octet-stream";
    private const string ImmutableCaching = "private, max-age=31536000, immutable";

    public static RouteGroupBuilder MapTileEndpoints(this RouteGroupBuilder log)
    {
        // Entry bundles first in intent; routing prefers the literal 'entries' segment over {level} regardless of order.
        log.MapGet("/tile/entries/{**tile}", GetEntryBundleAsync).WithReadCost(ReadCost.Plain)
            .WithSummary("C2SP tlog-tiles entry bundle: up to 256 entries, each a 16-bit big-endian length and the exact leaf bytes")
            .WithName("getEntryBundle")
            .Produces<Stream>(StatusCodes.Status200OK, OctetStream)
            .Produces(StatusCodes.Status304NotModified)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        log.MapGet("/tile/{level}/{**tile}", GetHashTileAsync).WithReadCost(ReadCost.Plain)
            .WithSummary("C2SP tlog-tiles hash tile: up to 256 consecutive 32-byte Merkle tree hashes of one level")
            .WithName("getHashTile")
            .Produces<Stream>(StatusCodes.Status200OK, OctetStream)
            .Produces(StatusCodes.Status304NotModified)
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return log;
    }

    private static async Task<IResult> GetHashTileAsync(HttpContext context, string level, string tile, ILogStore store, CancellationToken cancellationToken)
    {
        if (TileAddress.TryParse(level, tile, out var address) is { } error)
        {
            return Problem.Validation(error);
        }

        var tenant = TenantAccessFilter.Current(context);
        if (await FindAsync(store, tenant.Id, address, cancellationToken).ConfigureAwait(false) is { } missing)
        {
            return missing;
        }

        var ids = new NodeId[address.Width];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = address.NodeAt(i);
        }

        // Every node of a tile within a signed size is a complete subtree, so the store has it.
        var hashes = new Hash[ids.Length];
        await store.NodeReader(tenant.Id).ReadNodesAsync(ids, hashes, cancellationToken).ConfigureAwait(false);
        var body = new byte[hashes.Length * Hash.Size];
        for (var i = 0; i < hashes.Length; i++)
        {
            hashes[i].CopyTo(body.AsSpan(i * Hash.Size));
        }

        return Answer(context, address, body);
    }

    private static async Task<IResult> GetEntryBundleAsync(HttpContext context, string tile, ILogStore store, StoredLeafCheck leafCheck, CancellationToken cancellationToken)
    {
        if (TileAddress.TryParse("entries", tile, out var address) is { } error)
        {
            return Problem.Validation(error);
        }

        var tenant = TenantAccessFilter.Current(context);
        if (await FindAsync(store, tenant.Id, address, cancellationToken).ConfigureAwait(false) is { } missing)
        {
            return missing;
        }

        var entries = await store.ListEntriesAsync(tenant.Id, address.FirstEntry, address.Width, cancellationToken).ConfigureAwait(false);
        var size = 0;
        for (var i = 0; i < address.Width; i++)
        {
            var index = address.FirstEntry + (ulong)i;
            if (i >= entries.Count || entries[i].Index != index)
            {
                throw new InvalidOperationException($"Entry {index} of tenant '{tenant.Id}' is within a signed checkpoint but not stored.");
            }

            // A purged entry has no bytes a client could hash to the tile's leaf hash: the bundle is refused rather than
            // served with bytes that fail verification (the tiles of hashes still carry its leaf hash).
            if (entries[i].PurgedBy is not null)
            {
                return await Retention.PurgedEntries.ProblemAsync(store, tenant.Id, entries[i], cancellationToken).ConfigureAwait(false);
            }

            if (!leafCheck.IsIntact(tenant.Id, entries[i]))
            {
                return StoredLeafCheck.Problem(index);
            }

            if (entries[i].Leaf.Length > LeafWriter.MaxLeafBytes)
            {
                return Problem.Conflict("entry-too-large", $"Entry {index} is {entries[i].Leaf.Length} bytes, more than the {LeafWriter.MaxLeafBytes} an entry bundle can carry (stored before the limit); read it from …/log/entries/{index}.");
            }

            size += 2 + entries[i].Leaf.Length;
        }

        var body = new byte[size];
        var offset = 0;
        foreach (var entry in entries.Take(address.Width))
        {
            // tlog-tiles: each entry is a big-endian uint16 length and the entry bytes.
            BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(offset), (ushort)entry.Leaf.Length);
            entry.Leaf.CopyTo(body.AsSpan(offset + 2));
            offset += 2 + entry.Leaf.Length;
        }

        return Answer(context, address, body);
    }

    /// <summary>A problem when the tile is not part of the tree of the latest signed checkpoint (in full or with this width).</summary>
    private static async Task<IResult?> FindAsync(ILogStore store, string tenantId, TileAddress address, CancellationToken cancellationToken)
    {
        var signed = (await store.GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false))?.Size ?? 0;
        var width = TileAddress.WidthIn(address.Level, address.Index, signed);
        if (width == address.Width)
        {
            return null;
        }

        return width == 0
            ? Problem.NotFound($"{address.Path} is beyond the latest checkpoint (tree size {signed}); tiles are served only within a signed tree size.")
            : Problem.NotFound($"{address.Path} is not a tile of the latest checkpoint (tree size {signed}), whose tile here is {(address with { Width = width }).Path}.");
    }

    private static IResult Answer(HttpContext context, TileAddress address, byte[] body)
    {
        var etag = new EntityTagHeaderValue("\"" + System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(body)) + "\"");
        var headers = context.Response.GetTypedHeaders();
        headers.ETag = etag;

        // Private: every read needs the tenant's credential, so no shared cache may keep a copy for others.
        context.Response.Headers.CacheControl = address.IsFull ? ImmutableCaching : "no-cache";
        var sent = context.Request.GetTypedHeaders().IfNoneMatch;
        if (sent.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || tag.Compare(etag, useStrongComparison: false)))
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return TypedResults.Bytes(body, OctetStream);
    }
}
