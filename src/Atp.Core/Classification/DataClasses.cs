namespace Atp.Core.Classification;

/// <summary>The classes a field can have (the <c>Atp</c> data classification taxonomy).</summary>
public static class DataClasses
{
    public const string Taxonomy = "Atp";
    public const string Pii = "pii";
    public const string Secret = "secret";
    public const string Sensitive = "sensitive";
}
