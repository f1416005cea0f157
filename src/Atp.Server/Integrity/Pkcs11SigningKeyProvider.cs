using System.Collections.Concurrent;
using System.Security.Cryptography;
using Atp.Integrity;
using Microsoft.Extensions.Options;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using ISession = Net.Pkcs11Interop.HighLevelAPI.ISession;

namespace Atp.Server.Integrity;

/// <summary>
/// The cell signing key in a PKCS#11 token (an HSM, or SoftHSM2 in tests): checkpoints are signed inside the token with
/// CKM_EDDSA (pure Ed25519), and the private key never enters this process. The verifier key is built from the public
/// object's CKA_EC_POINT, so what <c>/v1/log/keys</c> publishes is what the token signs with.
/// </summary>
internal sealed partial class Pkcs11SigningKeyProvider : ISigningKeyProvider, IDisposable
{
    // PKCS#11 3.0 values; Pkcs11Interop 5.x names only the 2.40 constants.
    private const CKK EcEdwardsKeyType = (CKK)0x40;
    private const CKM EcEdwardsKeyPairGen = (CKM)0x1055;
    private const CKM EdDsa = (CKM)0x1057;

    // PKCS#11 3.0 §2.3.10: CKA_EC_PARAMS of an Ed25519 key is the DER OID id-Ed25519, 1.3.101.112 (RFC 8410).
    private static readonly byte[] Ed25519Parameters = [0x06, 0x03, 0x2B, 0x65, 0x70];

    private readonly Pkcs11InteropFactories _factories = new();
    private readonly IPkcs11Library _library;
    private readonly ISlot _slot;

    // PKCS#11 logs the application out when its last session closes, so this one stays open for the provider's life.
    private readonly ISession _loginSession;
    private readonly IObjectHandle _privateKey;

    // A PKCS#11 session runs one operation at a time; concurrent signers each take an idle session (opened on demand).
    private readonly ConcurrentBag<ISession> _idleSessions = [];

    public Pkcs11SigningKeyProvider(IOptions<Pkcs11KeyOptions> keyOptions, IOptions<AtpOptions> options, ILogger<Pkcs11SigningKeyProvider> logger)
    {
        ArgumentNullException.ThrowIfNull(keyOptions);
        ArgumentNullException.ThrowIfNull(options);
        var settings = keyOptions.Value;
        Pkcs11Native.EnsureLoadable();
        try
        {
            _library = _factories.Pkcs11LibraryFactory.LoadPkcs11Library(_factories, settings.Library, AppType.MultiThreaded);
        }
        catch (Exception e) when (e is Pkcs11Exception or UnmanagedException or DllNotFoundException or BadImageFormatException)
        {
            throw new SigningKeyUnavailableException($"The PKCS#11 module {settings.Library} could not be loaded: {e.Message}", e);
        }

        try
        {
            _slot = FindSlot(settings.TokenLabel);
            _loginSession = _slot.OpenSession(SessionType.ReadWrite);
            Login(_loginSession, settings);
            (_privateKey, var publicKey) = FindOrCreateKey(settings, logger);
            Current = NoteSigner.FromExternalKey(options.Value.Origin, publicKey, Sign);
        }
        catch
        {
            _loginSession?.Dispose();
            _library.Dispose();
            throw;
        }

        Verifiers = [Current.Verifier];
        LogKeyLoaded(logger, settings.KeyLabel, settings.TokenLabel, Current.Verifier.VerifierKey);
    }

    public NoteSigner Current { get; }

    public IReadOnlyList<NoteVerifier> Verifiers { get; }

    public void Dispose()
    {
        Current.Dispose();
        while (_idleSessions.TryTake(out var session))
        {
            session.Dispose();
        }

        _loginSession.Dispose();
        _library.Dispose();
    }

    private byte[] Sign(byte[] message)
    {
        if (!_idleSessions.TryTake(out var session))
        {
            session = _slot.OpenSession(SessionType.ReadOnly);
        }

        try
        {
            using var mechanism = _factories.MechanismFactory.Create(EdDsa);
            var signature = session.Sign(mechanism, _privateKey, message);
            _idleSessions.Add(session);
            return signature;
        }
        catch (Pkcs11Exception)
        {
            // A session that failed mid-operation may be left in an active-operation state; do not hand it out again.
            session.Dispose();
            throw;
        }
    }

    private ISlot FindSlot(string tokenLabel)
    {
        foreach (var slot in _library.GetSlotList(SlotsType.WithTokenPresent))
        {
            if (string.Equals(slot.GetTokenInfo().Label.Trim(), tokenLabel, StringComparison.Ordinal))
            {
                return slot;
            }
        }

        throw new SigningKeyUnavailableException($"No PKCS#11 token labelled '{tokenLabel}' is present (Atp:Keys:Pkcs11:TokenLabel).");
    }

    private static void Login(ISession session, Pkcs11KeyOptions settings)
    {
        var pin = settings.ReadPin();
        try
        {
            session.Login(CKU.CKU_USER, pin);
        }
        catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
        {
            // Another provider in this process (a second server in one test host) logged the application in already.
        }
        catch (Pkcs11Exception e) when (e.RV is CKR.CKR_PIN_INCORRECT or CKR.CKR_PIN_INVALID or CKR.CKR_PIN_LEN_RANGE or CKR.CKR_PIN_EXPIRED or CKR.CKR_PIN_LOCKED)
        {
            // The message names the PIN's source, never the PIN.
            var source = settings.PinFile is { Length: > 0 } file ? $"the file {file}" : $"the environment variable {settings.PinEnvironmentVariable}";
            throw new SigningKeyUnavailableException($"The token '{settings.TokenLabel}' refused the user PIN from {source} ({e.RV}).", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pin);
        }
    }

    private (IObjectHandle PrivateKey, byte[] PublicKey) FindOrCreateKey(Pkcs11KeyOptions settings, ILogger logger)
    {
        var privateKeys = FindKeys(CKO.CKO_PRIVATE_KEY, settings.KeyLabel);
        var publicKeys = FindKeys(CKO.CKO_PUBLIC_KEY, settings.KeyLabel);
        if (privateKeys.Count == 0 && publicKeys.Count == 0)
        {
            if (!settings.CreateKeyIfMissing)
            {
                throw new SigningKeyUnavailableException(
                    $"The token '{settings.TokenLabel}' holds no Ed25519 key labelled '{settings.KeyLabel}'. Create one in the token, "
                    + "or set Atp:Keys:Pkcs11:CreateKeyIfMissing=true to have ATP generate a non-extractable one.");
            }

            var created = Generate(settings.KeyLabel);
            LogKeyCreated(logger, settings.KeyLabel, settings.TokenLabel);
            return (created.PrivateKey, ReadPublicKey(created.PublicKey, settings));
        }

        if (privateKeys.Count != 1 || publicKeys.Count != 1)
        {
            throw new SigningKeyUnavailableException(
                $"The token '{settings.TokenLabel}' must hold exactly one Ed25519 private and one public key labelled '{settings.KeyLabel}'; "
                + $"it holds {privateKeys.Count} and {publicKeys.Count}.");
        }

        return (privateKeys[0], ReadPublicKey(publicKeys[0], settings));
    }

    private List<IObjectHandle> FindKeys(CKO objectClass, string label)
    {
        var attributes = _factories.ObjectAttributeFactory;
        return _loginSession.FindAllObjects(
        [
            attributes.Create(CKA.CKA_CLASS, objectClass),
            attributes.Create(CKA.CKA_KEY_TYPE, (ulong)EcEdwardsKeyType),
            attributes.Create(CKA.CKA_LABEL, label),
        ]);
    }

    private (IObjectHandle PrivateKey, IObjectHandle PublicKey) Generate(string label)
    {
        var attributes = _factories.ObjectAttributeFactory;
        List<IObjectAttribute> publicTemplate =
        [
            attributes.Create(CKA.CKA_TOKEN, true),
            attributes.Create(CKA.CKA_PRIVATE, false),
            attributes.Create(CKA.CKA_VERIFY, true),
            attributes.Create(CKA.CKA_LABEL, label),
            attributes.Create(CKA.CKA_EC_PARAMS, Ed25519Parameters),
        ];
        List<IObjectAttribute> privateTemplate =
        [
            attributes.Create(CKA.CKA_TOKEN, true),
            attributes.Create(CKA.CKA_PRIVATE, true),
            attributes.Create(CKA.CKA_SIGN, true),
            attributes.Create(CKA.CKA_SENSITIVE, true),
            attributes.Create(CKA.CKA_EXTRACTABLE, false),
            attributes.Create(CKA.CKA_LABEL, label),
        ];
        using var mechanism = _factories.MechanismFactory.Create(EcEdwardsKeyPairGen);
        _loginSession.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out var publicKey, out var privateKey);
        return (privateKey, publicKey);
    }

    private byte[] ReadPublicKey(IObjectHandle publicKey, Pkcs11KeyOptions settings)
    {
        var point = _loginSession.GetAttributeValue(publicKey, [CKA.CKA_EC_POINT])[0].GetValueAsByteArray() ?? [];

        // PKCS#11 3.0 says CKA_EC_POINT of an Edwards key is the DER OCTET STRING of the 32-byte key (04 20 ‖ key);
        // some modules return the bare 32 bytes.
        return point switch
        {
            { Length: 32 } => point,
            [0x04, 0x20, ..] when point.Length == 34 => point[2..],
            _ => throw new SigningKeyUnavailableException(
                $"The key labelled '{settings.KeyLabel}' in token '{settings.TokenLabel}' is not an Ed25519 key (CKA_EC_POINT of {point.Length} bytes)."),
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Signing checkpoints with the PKCS#11 key {KeyLabel} in token {TokenLabel}; verifier key {VerifierKey}")]
    private static partial void LogKeyLoaded(ILogger logger, string keyLabel, string tokenLabel, string verifierKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Generated a non-extractable Ed25519 key {KeyLabel} in PKCS#11 token {TokenLabel} (CreateKeyIfMissing)")]
    private static partial void LogKeyCreated(ILogger logger, string keyLabel, string tokenLabel);
}
