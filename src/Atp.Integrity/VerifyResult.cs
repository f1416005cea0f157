namespace Atp.Integrity;

/// <summary>
/// Outcome of a verification. A failed check is an expected outcome on untrusted input, so it is a value with a
/// reason a person can read, never an exception.
/// </summary>
public readonly record struct VerifyResult
{
    private VerifyResult(bool isValid, string? failure)
    {
        IsValid = isValid;
        Failure = failure;
    }

    /// <summary>True when every check passed.</summary>
    public bool IsValid { get; }

    /// <summary>What did not match, when <see cref="IsValid"/> is false.</summary>
    public string? Failure { get; }

    /// <summary>The successful result.</summary>
    public static VerifyResult Success { get; } = new(true, null);

    /// <summary>A failed result with its reason.</summary>
    public static VerifyResult Fail(string reason) => new(false, reason);

    /// <inheritdoc/>
    public override string ToString() => IsValid ? "verified" : Failure!;
}
