namespace Atp.Core.Schemas;

/// <summary>
/// How a new version of an event type's schema must relate to the earlier ones, with the meanings and names of
/// Confluent's Schema Registry: backward = every event valid under the earlier version is valid under the new one;
/// forward = the reverse; full = both; transitive = against every earlier version, else only the latest.
/// </summary>
public enum CompatibilityMode
{
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

/// <summary>The modes' wire names (<c>BACKWARD</c>, <c>FULL_TRANSITIVE</c>, …) and what each one checks.</summary>
public static class CompatibilityModes
{
    /// <summary>The mode of a type nobody set one for (Confluent's default too).</summary>
    public const CompatibilityMode Default = CompatibilityMode.Backward;

    private static readonly Dictionary<string, CompatibilityMode> ByName = new(StringComparer.Ordinal)
    {
        ["BACKWARD"] = CompatibilityMode.Backward,
        ["BACKWARD_TRANSITIVE"] = CompatibilityMode.BackwardTransitive,
        ["FORWARD"] = CompatibilityMode.Forward,
        ["FORWARD_TRANSITIVE"] = CompatibilityMode.ForwardTransitive,
        ["FULL"] = CompatibilityMode.Full,
        ["FULL_TRANSITIVE"] = CompatibilityMode.FullTransitive,
        ["NONE"] = CompatibilityMode.None,
    };

    /// <summary>Every wire name, for error messages and documentation.</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryParse(string? name, out CompatibilityMode mode) => ByName.TryGetValue(name ?? "", out mode);

    public static string Name(this CompatibilityMode mode) => mode switch
    {
        CompatibilityMode.Backward => "BACKWARD",
        CompatibilityMode.BackwardTransitive => "BACKWARD_TRANSITIVE",
        CompatibilityMode.Forward => "FORWARD",
        CompatibilityMode.ForwardTransitive => "FORWARD_TRANSITIVE",
        CompatibilityMode.Full => "FULL",
        CompatibilityMode.FullTransitive => "FULL_TRANSITIVE",
        CompatibilityMode.None => "NONE",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>Whether a new version must accept every event the earlier one accepted.</summary>
    public static bool ChecksBackward(this CompatibilityMode mode) =>
        mode is CompatibilityMode.Backward or CompatibilityMode.BackwardTransitive or CompatibilityMode.Full or CompatibilityMode.FullTransitive;

    /// <summary>Whether every event the new version accepts must be accepted by the earlier one.</summary>
    public static bool ChecksForward(this CompatibilityMode mode) =>
        mode is CompatibilityMode.Forward or CompatibilityMode.ForwardTransitive or CompatibilityMode.Full or CompatibilityMode.FullTransitive;

    /// <summary>Whether every earlier version is checked, not only the latest.</summary>
    public static bool IsTransitive(this CompatibilityMode mode) =>
        mode is CompatibilityMode.BackwardTransitive or CompatibilityMode.ForwardTransitive or CompatibilityMode.FullTransitive;
}
