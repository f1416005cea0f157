using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Integrity;

/// <summary>
/// <c>Atp:Keys:Pkcs11</c>: where the cell signing key lives when <c>Atp:Keys:Provider</c> is <c>pkcs11</c>. The user PIN
/// comes from <see cref="PinFile"/> or the environment variable named by <see cref="PinEnvironmentVariable"/>, never
/// from configuration itself, so it stays out of appsettings files and command lines.
/// </summary>
internal sealed class Pkcs11KeyOptions : IValidatableObject
{
    public const string Section = "Atp:Keys:Pkcs11";

    /// <summary>Path of the vendor's PKCS#11 module (e.g. <c>/usr/lib/softhsm/libsofthsm2.so</c>).</summary>
    public string Library { get; set; } = "";

    /// <summary>Label of the token that holds the key.</summary>
    public string TokenLabel { get; set; } = "";

    /// <summary>CKA_LABEL of the Ed25519 key pair (private and public object carry the same label).</summary>
    public string KeyLabel { get; set; } = "";

    /// <summary>File holding the user PIN (one line; an owner-only file or a mounted secret).</summary>
    public string? PinFile { get; set; }

    /// <summary>Environment variable holding the user PIN when <see cref="PinFile"/> is not set.</summary>
    public string PinEnvironmentVariable { get; set; } = "ATP_PKCS11_PIN";

    /// <summary>Generate a non-extractable Ed25519 pair in the token when no key has <see cref="KeyLabel"/> (off: a missing key stops the start).</summary>
    public bool CreateKeyIfMissing { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(Library))
        {
            yield return new ValidationResult("Atp:Keys:Pkcs11:Library must name the PKCS#11 module (.so) when Atp:Keys:Provider is pkcs11.", [nameof(Library)]);
        }
        else if (!File.Exists(Library))
        {
            yield return new ValidationResult($"Atp:Keys:Pkcs11:Library: no file at {Library}.", [nameof(Library)]);
        }

        if (string.IsNullOrWhiteSpace(TokenLabel))
        {
            yield return new ValidationResult("Atp:Keys:Pkcs11:TokenLabel must name the token that holds the signing key.", [nameof(TokenLabel)]);
        }

        if (string.IsNullOrWhiteSpace(KeyLabel))
        {
            yield return new ValidationResult("Atp:Keys:Pkcs11:KeyLabel must name the signing key (its CKA_LABEL).", [nameof(KeyLabel)]);
        }

        if (PinFile is { Length: > 0 } pinFile)
        {
            if (!File.Exists(pinFile))
            {
                yield return new ValidationResult($"Atp:Keys:Pkcs11:PinFile: no file at {pinFile}.", [nameof(PinFile)]);
            }
        }
        else if (string.IsNullOrEmpty(PinEnvironmentVariable) || string.IsNullOrEmpty(Environment.GetEnvironmentVariable(PinEnvironmentVariable)))
        {
            yield return new ValidationResult(
                $"The PKCS#11 user PIN is missing: set Atp:Keys:Pkcs11:PinFile or the environment variable {PinEnvironmentVariable}.", [nameof(PinFile)]);
        }
    }

    /// <summary>The PIN as UTF-8 bytes; the caller zeroes them after the login.</summary>
    internal byte[] ReadPin()
    {
        var text = PinFile is { Length: > 0 } ? File.ReadAllText(PinFile) : Environment.GetEnvironmentVariable(PinEnvironmentVariable) ?? "";

        // A PIN file written with echo ends in a newline that is not part of the PIN.
        return System.Text.Encoding.UTF8.GetBytes(text.TrimEnd('\r', '\n'));
    }
}
