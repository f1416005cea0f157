using System.Text;
using Atp.Integrity;

namespace Atp.Core.Storage;

/// <summary>
/// The check a head must pass before it is signed: a log server must never sign a checkpoint inconsistent with one it
/// signed before (a fork). The head's root must be the root of the stored Merkle nodes, and — when the tenant has a
/// signed checkpoint — that checkpoint must verify under the cell's keys and a consistency proof built from the stored
/// nodes (RFC 9162 §2.1.4) must take its root to the head's root.
/// </summary>
public static class SignableHead
{
    public static async Task<VerifyResult> CheckAsync(
        ILogStore store, string tenantId, TreeHead head, IReadOnlyList<NoteVerifier> verifiers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(head);
        var builder = new ProofBuilder(store.NodeReader(tenantId));
        try
        {
            var stored = await builder.RootAsync(head.Size, cancellationToken).ConfigureAwait(false);
            if (stored != head.Root)
            {
                return VerifyResult.Fail($"the tree head's root at size {head.Size} is not the root of the stored Merkle nodes");
            }

            if (await store.GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false) is not { } latest)
            {
                return VerifyResult.Success;
            }

            var opened = Checkpoint.Open(Encoding.UTF8.GetBytes(latest.Note), verifiers, out var signed);
            if (!opened.IsValid)
            {
                return VerifyResult.Fail($"the last signed checkpoint (size {latest.Size}) does not verify under the cell's keys: {opened.Failure}");
            }

            if (signed!.Size != latest.Size || signed.Size > head.Size)
            {
                return VerifyResult.Fail($"the last signed checkpoint is for size {signed.Size} (stored as {latest.Size}), the tree head is at size {head.Size}");
            }

            if (signed.Size == head.Size || signed.Size == 0)
            {
                var expected = signed.Size == 0 ? MerkleHasher.EmptyRoot : head.Root;
                return signed.Root == expected
                    ? VerifyResult.Success
                    : VerifyResult.Fail($"the last signed checkpoint's root at size {signed.Size} differs from the stored tree's");
            }

            var proof = await builder.ConsistencyProofAsync(signed.Size, head.Size, cancellationToken).ConfigureAwait(false);
            var consistent = ConsistencyProof.Verify(signed.Size, head.Size, proof, signed.Root, head.Root);
            return consistent.IsValid
                ? VerifyResult.Success
                : VerifyResult.Fail($"the tree head at size {head.Size} is not consistent with the last signed checkpoint (size {signed.Size}): {consistent.Failure}");
        }
        catch (InvalidOperationException e)
        {
            // The engines' node readers throw this for a node that should be stored and is not.
            return VerifyResult.Fail($"a stored Merkle node needed to check the tree head at size {head.Size} is missing: {e.Message}");
        }
    }
}
