namespace Atp.Core.Export;

/// <summary>What failed in a bundle: the member, and for an entry its log index and 1-based line in that member.</summary>
public sealed record BundleFailure(string Member, string Reason, ulong? Index = null, long? Line = null)
{
    public override string ToString() =>
        (Index, Line) switch
        {
            ({ } index, { } line) => $"{Member}, line {line} (index {index}): {Reason}",
            (null, { } line) => $"{Member}, line {line}: {Reason}",
            _ => $"{Member}: {Reason}",
        };
}

/// <summary>
/// The outcome of <see cref="BundleVerifier"/>: the manifest (only trustworthy when <see cref="IsValid"/>), the key
/// that verified the signatures, whether that key was pinned by the caller, or the first failure.
/// </summary>
public sealed record BundleVerification(BundleManifest? Manifest, BundleFailure? Failure, string? VerifierKey, bool KeyPinned)
{
    public bool IsValid => Failure is null;

    internal static BundleVerification Failed(BundleFailure failure, BundleManifest? manifest = null) => new(manifest, failure, null, false);
}
