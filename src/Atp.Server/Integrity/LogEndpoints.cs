using System.Text;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;

namespace Atp.Server.Integrity;

/// <summary>The verifiable log: checkpoints, exact leaf bytes, inclusion and consistency proofs, verifier keys.</summary>
internal static class LogEndpoints
{
    public static IEndpointRouteBuilder MapLogEndpoints(this IEndpointRouteBuilder app)
    {
        var log = app.MapGroup("/v1/tenants/{tenant}/log").WithTags("Log").RequireAuthorization(Scopes.EventsRead).RequireTenantAccess();

        log.MapGet("/checkpoint", GetCheckpointAsync).WithSummary("Latest signed checkpoint (C2SP tlog-checkpoint in a signed note), text/plain")
            .WithName("getCheckpoint")
            .Produces<string>(StatusCodes.Status200OK, "text/plain");
        log.MapGet("/entries/{index}", GetEntryAsync).WithSummary("The exact leaf bytes of entry {index} (classified fields as their sealed tokens, for every caller, pii:read included); 500 integrity-failure if they no longer match the stored leaf hash; 410 purged (with the purge record) once retention removed its content")
            .WithName("getEntry")
            .Produces<Stream>(StatusCodes.Status200OK, "application/json")
            .ProducesProblem(StatusCodes.Status410Gone)
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        log.MapGet("/proof/inclusion", GetInclusionAsync).WithReadCost(ReadCost.Proof).WithSummary("Inclusion proof of entry index in the tree of size (default: latest checkpoint)")
            .WithName("getInclusionProof")
            .WithParameter("index", "The entry's 0-based index.", Microsoft.OpenApi.JsonSchemaType.Integer, "int64", "1", required: true, minimum: 0)
            .WithParameter("size", "The tree size to prove against, at most the latest checkpoint's (default: that size).", Microsoft.OpenApi.JsonSchemaType.Integer, "int64", "2", minimum: 1)
            .Produces<InclusionProofResponse>()
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        log.MapGet("/proof/consistency", GetConsistencyAsync).WithReadCost(ReadCost.Proof).WithSummary("Consistency proof between tree sizes from and to (≤ latest checkpoint)")
            .WithName("getConsistencyProof")
            .WithParameter("from", "The older tree size (at least 1).", Microsoft.OpenApi.JsonSchemaType.Integer, "int64", "1", required: true, minimum: 1)
            .WithParameter("to", "The newer tree size, at most the latest checkpoint's.", Microsoft.OpenApi.JsonSchemaType.Integer, "int64", "2", required: true, minimum: 1)
            .Produces<ConsistencyProofResponse>();
        log.MapTileEndpoints();

        log.MapGet("/keys", GetTenantKeys)
            .WithSummary("Verifier keys of this tenant's checkpoints: the cell's keys, or for a read-only replica the source cell's keys recorded by atp import (status source)")
            .WithName("getTenantVerifierKeys")
            .Produces<KeysResponse>();

        app.MapGet("/v1/log/keys", (ISigningKeyProvider keys) => TypedResults.Ok(CellKeys(keys)))
            .WithTags("Log")
            .AllowAnonymous()
            .WithSummary("Verifier keys of this cell's checkpoint signatures, each with its status (active, next, retiring, retired) and validity; a checkpoint signed by any of them is the cell's")
            .WithName("getVerifierKeys")
            .Produces<KeysResponse>();
        app.MapSigningKeyEndpoints();
        return app;
    }

    internal static KeysResponse CellKeys(ISigningKeyProvider keys) =>
        new([.. keys.Keys.Select(k => new KeyDto(k.Verifier.Name, k.Verifier.VerifierKey, SigningKeyring.StatusName(k.Status), k.KeyIdHex, k.NotBefore, k.NotAfter, k.RetiredAt))]);

    // A replica's checkpoints are signed by the source cell, whose keys atp import recorded in the data directory.
    private static Microsoft.AspNetCore.Http.HttpResults.Ok<KeysResponse> GetTenantKeys(HttpContext context, ISigningKeyProvider keys, Microsoft.Extensions.Options.IOptions<AtpOptions> options)
    {
        var tenant = TenantAccessFilter.Current(context);
        return TypedResults.Ok(tenant.IsReplica
            ? new KeysResponse(Atp.Core.Export.ReplicaKeys.Read(options.Value.DataDirectory, tenant.Id).Select(v => new KeyDto(v.Name, v.VerifierKey, "source")).ToArray())
            : CellKeys(keys));
    }

    private static async Task<IResult> GetCheckpointAsync(HttpContext context, ILogStore store, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var latest = await store.GetLatestCheckpointAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        if (latest is null)
        {
            context.Response.Headers.RetryAfter = "1";
            return Problem.NotFound("No checkpoint has been signed for this log yet; one follows within the checkpoint interval.");
        }

        context.Response.Headers.CacheControl = "no-cache";
        return TypedResults.Text(latest.Note, "text/plain; charset=utf-8", Encoding.UTF8);
    }

    private static async Task<IResult> GetEntryAsync(HttpContext context, string index, ILogStore store, StoredLeafCheck leafCheck, CancellationToken cancellationToken)
    {
        if (!ulong.TryParse(index, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var position))
        {
            return Problem.Validation("index: a non-negative integer.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var entry = await store.GetEntryAsync(tenant.Id, position, cancellationToken).ConfigureAwait(false);
        if (entry is null)
        {
            return Problem.NotFound($"The log has no entry {position}.");
        }

        if (entry.PurgedBy is not null)
        {
            context.Response.Headers["Leaf-Hash"] = entry.LeafHash.ToBase64();
            return await Retention.PurgedEntries.ProblemAsync(store, tenant.Id, entry, cancellationToken).ConfigureAwait(false);
        }

        if (!leafCheck.IsIntact(tenant.Id, entry))
        {
            return StoredLeafCheck.Problem(position);
        }

        context.Response.Headers["Leaf-Hash"] = entry.LeafHash.ToBase64();
        return TypedResults.Bytes(entry.Leaf, "application/json");
    }

    private static async Task<IResult> GetInclusionAsync(HttpContext context, string? index, string? size, ILogStore store, StoredLeafCheck leafCheck, CancellationToken cancellationToken)
    {
        if (!TryParse(index, out var position))
        {
            return Problem.Validation("index: a non-negative integer is required.");
        }

        ulong treeSize = 0;
        if (size is not null && !TryParse(size, out treeSize))
        {
            return Problem.Validation("size: a non-negative integer.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var latest = await LatestSizeAsync(store, tenant.Id, cancellationToken).ConfigureAwait(false);
        treeSize = size is null ? latest : treeSize;
        if (treeSize > latest)
        {
            return Problem.Validation($"size: {treeSize} is beyond the latest checkpoint ({latest}); proofs are served only for signed tree sizes.");
        }

        if (position >= treeSize)
        {
            return Problem.Validation($"index: {position} is not below tree size {treeSize}.");
        }

        var hashes = await new ProofBuilder(store.NodeReader(tenant.Id)).InclusionProofAsync(position, treeSize, cancellationToken).ConfigureAwait(false);
        var entry = await store.GetEntryAsync(tenant.Id, position, cancellationToken).ConfigureAwait(false);
        if (entry is null || !leafCheck.IsIntact(tenant.Id, entry))
        {
            // The proof would still verify for the stored hash, but that hash no longer vouches for the stored bytes.
            return entry is null ? Problem.NotFound($"The log has no entry {position}.") : StoredLeafCheck.Problem(position);
        }

        return TypedResults.Ok(new InclusionProofResponse(position, treeSize, entry.LeafHash.ToBase64(), hashes.Select(h => h.ToBase64()).ToArray()));
    }

    private static async Task<IResult> GetConsistencyAsync(HttpContext context, string? from, string? to, ILogStore store, CancellationToken cancellationToken)
    {
        if (!TryParse(from, out var oldSize) || !TryParse(to, out var newSize))
        {
            return Problem.Validation("from and to: non-negative integers are required.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var latest = await LatestSizeAsync(store, tenant.Id, cancellationToken).ConfigureAwait(false);
        if (oldSize == 0)
        {
            return Problem.Validation("from: must be at least 1; a consistency proof from the empty tree proves nothing.");
        }

        if (oldSize > newSize)
        {
            return Problem.Validation($"from ({oldSize}) must not be larger than to ({newSize}).");
        }

        if (newSize > latest)
        {
            return Problem.Validation($"to: {newSize} is beyond the latest checkpoint ({latest}); proofs are served only for signed tree sizes.");
        }

        var hashes = await new ProofBuilder(store.NodeReader(tenant.Id)).ConsistencyProofAsync(oldSize, newSize, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ConsistencyProofResponse(oldSize, newSize, hashes.Select(h => h.ToBase64()).ToArray()));
    }

    private static async Task<ulong> LatestSizeAsync(ILogStore store, string tenantId, CancellationToken cancellationToken) =>
        (await store.GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false))?.Size ?? 0;

    private static bool TryParse(string? text, out ulong value) =>
        ulong.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);
}

/// <summary>A published verifier key: status active, next, retiring or retired (or source for a replica), and validity.</summary>
internal sealed record KeyDto(
    string Name, string VerifierKey, string Status, string? KeyId = null, DateTimeOffset? NotBefore = null, DateTimeOffset? NotAfter = null, DateTimeOffset? RetiredAt = null);

internal sealed record KeysResponse(IReadOnlyList<KeyDto> Keys);

internal sealed record InclusionProofResponse(ulong Index, ulong TreeSize, string LeafHash, IReadOnlyList<string> Hashes);

internal sealed record ConsistencyProofResponse(ulong From, ulong To, IReadOnlyList<string> Hashes);
