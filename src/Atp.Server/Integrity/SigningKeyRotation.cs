using System.ComponentModel.DataAnnotations;
using Atp.Core.Events;
using Atp.Server.Audit;
using Microsoft.Extensions.Options;

namespace Atp.Server.Integrity;

/// <summary>The <c>Atp:Keys</c> configuration section: signing key rotation.</summary>
public sealed class KeyRotationOptions
{
    public const string Section = "Atp:Keys";

    /// <summary>
    /// How long the old key keeps signing alongside the new one after a rotation starts, when the request names no
    /// overlap; then it retires by itself. Null: the old key signs until an operator retires it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan? RotationOverlap { get; set; }
}

/// <summary>
/// The rotation steps of the cell's signing keys, each recorded in the platform audit log: start (a new key signs
/// alongside the old one), retire (by an operator, or by the sealer once the overlap has passed).
/// </summary>
internal sealed class SigningKeyRotation(ISigningKeyProvider keys, PlatformAuditLog audit, IOptions<KeyRotationOptions> options, TimeProvider clock)
{
    public const string RotatedAction = "signing-key.rotation-started";
    public const string RetiredAction = "signing-key.retired";

    /// <summary>The provider when it can rotate; null for a provider whose keys are fixed (an operator changes them there).</summary>
    public IRotatingSigningKeyProvider? Rotating => keys as IRotatingSigningKeyProvider;

    /// <summary>Starts a rotation for the operator making <paramref name="context"/>'s request.</summary>
    /// <exception cref="SigningKeyStateException">The keys cannot rotate now.</exception>
    public async Task<SigningKeyInfo> RotateAsync(HttpContext context, TimeSpan? overlap, CancellationToken cancellationToken)
    {
        var provider = Rotating ?? throw new SigningKeyStateException("rotation-unsupported", "This cell's key provider does not rotate keys itself; rotate them where they are kept.");
        var next = provider.Rotate(clock.GetUtcNow(), overlap ?? options.Value.RotationOverlap);
        var retiring = provider.Keys.First(k => k.Status == SigningKeyStatus.Retiring);
        var data = new Dictionary<string, string> { ["keyId"] = next.KeyIdHex, ["verifierKey"] = next.Verifier.VerifierKey, ["retiringKeyId"] = retiring.KeyIdHex };
        if (retiring.NotAfter is { } end)
        {
            data["retiringNotAfter"] = end.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        }

        await audit.RecordAsync(PlatformEvents.AdminAction(context, RotatedAction, PlatformAuditLog.TenantId, data), cancellationToken).ConfigureAwait(false);
        return next;
    }

    /// <summary>Retires the retiring key for the operator making <paramref name="context"/>'s request.</summary>
    /// <exception cref="SigningKeyStateException">No such key, or it is not the retiring key.</exception>
    public async Task<SigningKeyInfo> RetireAsync(HttpContext context, uint keyId, CancellationToken cancellationToken)
    {
        var provider = Rotating ?? throw new SigningKeyStateException("rotation-unsupported", "This cell's key provider does not rotate keys itself; rotate them where they are kept.");
        var retired = provider.Retire(keyId, clock.GetUtcNow());
        await audit.RecordAsync(PlatformEvents.AdminAction(context, RetiredAction, PlatformAuditLog.TenantId, RetiredData(retired, "operator")), cancellationToken).ConfigureAwait(false);
        return retired;
    }

    /// <summary>Retires the retiring key once its overlap has passed; the sealer calls this before every pass.</summary>
    public async Task RetireDueAsync(CancellationToken cancellationToken)
    {
        if (Rotating?.RetireDue(clock.GetUtcNow()) is { } retired)
        {
            await audit.RecordAsync(
                new PlatformEvent(PlatformEvents.AdminType, RetiredAction, new Party("system", "key-rotation", null), PlatformAuditLog.TenantId, EventOutcome.Success, null, RetiredData(retired, "overlap-ended")),
                cancellationToken).ConfigureAwait(false);
        }
    }

    private static Dictionary<string, string> RetiredData(SigningKeyInfo retired, string reason) =>
        new() { ["keyId"] = retired.KeyIdHex, ["verifierKey"] = retired.Verifier.VerifierKey, ["reason"] = reason };
}
