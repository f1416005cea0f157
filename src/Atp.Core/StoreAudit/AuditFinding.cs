namespace Atp.Core.StoreAudit;

/// <summary>What a self-audit mismatch is about.</summary>
public enum AuditFindingKind
{
    /// <summary>The leaf bytes do not hash to the stored leaf hash.</summary>
    Leaf,

    /// <summary>A stored Merkle node is not the hash of its stored children.</summary>
    Node,

    /// <summary>An entry below the tree head's size is not stored (or a stored row is unreadable).</summary>
    MissingEntry,

    /// <summary>The stored tree head's root is not the root of the stored tree.</summary>
    TreeHead,

    /// <summary>A checkpoint's signature does not verify with any trusted key, or the note is malformed.</summary>
    CheckpointSignature,

    /// <summary>A checkpoint is not consistent with the stored tree (or with the tenant's other checkpoints).</summary>
    CheckpointInconsistent,
}

/// <summary>
/// One mismatch: the tenant, the kind, and the position — the entry index for leaves, nodes and missing entries, the
/// tree size for tree heads and checkpoints. <paramref name="Detail"/> holds hashes and sizes, never leaf content.
/// </summary>
public sealed record AuditFinding(string TenantId, AuditFindingKind Kind, ulong Index, string Detail)
{
    /// <summary>"leaf", "node", "missing-entry", "tree-head", "checkpoint-signature", "checkpoint-inconsistent".</summary>
    public string KindName => Kind switch
    {
        AuditFindingKind.Leaf => "leaf",
        AuditFindingKind.Node => "node",
        AuditFindingKind.MissingEntry => "missing-entry",
        AuditFindingKind.TreeHead => "tree-head",
        AuditFindingKind.CheckpointSignature => "checkpoint-signature",
        _ => "checkpoint-inconsistent",
    };

    /// <summary>Whether <see cref="Index"/> is an entry index (else a tree size).</summary>
    public bool IsEntry => Kind is AuditFindingKind.Leaf or AuditFindingKind.Node or AuditFindingKind.MissingEntry;

    public override string ToString() =>
        $"tenant {TenantId}, {(IsEntry ? "index" : "tree size")} {Index}: {KindName}: {Detail}";
}
