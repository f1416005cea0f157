namespace Atp.Server.Integrity;

/// <summary>
/// The configured signing key cannot be used (module not loadable, token or key missing, PIN refused). The message is
/// meant for the operator and never carries the PIN or key material.
/// </summary>
public sealed class SigningKeyUnavailableException : Exception
{
    public SigningKeyUnavailableException()
    {
    }

    public SigningKeyUnavailableException(string message)
        : base(message)
    {
    }

    public SigningKeyUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
