namespace Atp.Core.Signatures;

/// <summary>The RFC 8941 bare-item types this parser accepts (decimals and RFC 9651 additions are refused).</summary>
internal enum SfKind
{
    Integer,
    String,
    Token,
    ByteSequence,
    Boolean,
}

/// <summary>An RFC 8941 §3.3 bare item: <see cref="Integer"/>, <see cref="Text"/> (string or token), <see cref="Bytes"/> or <see cref="Boolean"/> by <see cref="Kind"/>.</summary>
internal readonly record struct SfItem(SfKind Kind, long Integer = 0, string? Text = null, byte[]? Bytes = null, bool Boolean = false);

/// <summary>One parameter (RFC 8941 §3.1.2); a parameter written without a value is boolean true.</summary>
internal sealed record SfParameter(string Key, SfItem Value);

/// <summary>An item of an inner list with its own parameters (RFC 8941 §3.1.1).</summary>
internal sealed record SfInnerItem(SfItem Value, IReadOnlyList<SfParameter> Parameters);

/// <summary>
/// One dictionary member (RFC 8941 §3.2): either <see cref="Item"/> or <see cref="InnerList"/> is set. <see cref="RawValue"/>
/// is the member value exactly as received (after <c>key=</c>, through its parameters): RFC 9421 signs the
/// <c>@signature-params</c> line with the Signature-Input member as the signer wrote it.
/// </summary>
internal sealed record SfMember(string Key, SfItem? Item, IReadOnlyList<SfInnerItem>? InnerList, IReadOnlyList<SfParameter> Parameters, string RawValue)
{
    public SfItem? Parameter(string key)
    {
        foreach (var parameter in Parameters)
        {
            if (parameter.Key == key)
            {
                return parameter.Value;
            }
        }

        return null;
    }
}
