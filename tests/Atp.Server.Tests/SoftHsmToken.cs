using System.Diagnostics;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Atp.Server.Tests;

/// <summary>
/// A throwaway SoftHSM2 token: its own token directory and configuration (SOFTHSM2_CONF, set for this process and so
/// inherited by child servers), initialised with <c>softhsm2-util --init-token --free</c>.
/// </summary>
public sealed class SoftHsmToken : IDisposable
{
    public const string Module = "/usr/lib/softhsm/libsofthsm2.so";
    public const string Label = "atp-test";
    public const string Pin = "4711-user-pin";
    private const string SecurityOfficerPin = "0815-so-pin";

    public SoftHsmToken()
    {
        if (!File.Exists(Module))
        {
            throw new InvalidOperationException($"SoftHSM2 is not installed ({Module} is missing): apt-get install softhsm2 (eng/test.sh installs it).");
        }

        Directory = System.IO.Directory.CreateTempSubdirectory("atp-softhsm-").FullName;
        var tokens = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "tokens")).FullName;
        var configuration = Path.Combine(Directory, "softhsm2.conf");
        File.WriteAllText(configuration, $"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n");
        // SoftHSM reads SOFTHSM2_CONF with getenv when this process loads it, and .NET's SetEnvironmentVariable does not
        // reach the native environment on Unix; child processes inherit the managed copy.
        Environment.SetEnvironmentVariable("SOFTHSM2_CONF", configuration);
        if (NativeMethods.setenv("SOFTHSM2_CONF", configuration, 1) != 0)
        {
            throw new InvalidOperationException("setenv(SOFTHSM2_CONF) failed");
        }

        PinFile = Path.Combine(Directory, "user.pin");
        File.WriteAllText(PinFile, Pin + "\n");

        var start = new ProcessStartInfo("softhsm2-util") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--init-token", "--free", "--label", Label, "--pin", Pin, "--so-pin", SecurityOfficerPin })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"softhsm2-util --init-token failed ({process.ExitCode}): {output}");
        }
    }

    public string Directory { get; }

    public string PinFile { get; }

    /// <summary>Server settings selecting the PKCS#11 provider with this token and the given key label.</summary>
    public Dictionary<string, string?> Settings(string keyLabel, bool createKeyIfMissing = true, string? pinFile = null) => new(StringComparer.Ordinal)
    {
        ["Atp:Keys:Provider"] = "pkcs11",
        ["Atp:Keys:Pkcs11:Library"] = Module,
        ["Atp:Keys:Pkcs11:TokenLabel"] = Label,
        ["Atp:Keys:Pkcs11:KeyLabel"] = keyLabel,
        ["Atp:Keys:Pkcs11:PinFile"] = pinFile ?? PinFile,
        ["Atp:Keys:Pkcs11:CreateKeyIfMissing"] = createKeyIfMissing ? "true" : "false",
    };

    /// <summary>
    /// Opens the token as an independent client would, logged in as the user. Only while no server in this process
    /// has the module loaded: PKCS#11 initialises a module once per process, and the first to finalise it ends both.
    /// </summary>
    public TokenSession Open() => new();

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // The OS reclaims the temp directory.
        }
    }

    private static class NativeMethods
    {
        [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
        internal static extern int setenv(string name, string value, int overwrite);
    }

    public sealed class TokenSession : IDisposable
    {
        private readonly IPkcs11Library _library;

        internal TokenSession()
        {
            Atp.Server.Integrity.Pkcs11Native.EnsureLoadable();
            Factories = new Pkcs11InteropFactories();
            _library = Factories.Pkcs11LibraryFactory.LoadPkcs11Library(Factories, Module, AppType.MultiThreaded);
            var slot = _library.GetSlotList(SlotsType.WithTokenPresent).Single(s => s.GetTokenInfo().Label.Trim() == Label);
            Session = slot.OpenSession(SessionType.ReadWrite);
            Session.Login(CKU.CKU_USER, Pin);
        }

        public Pkcs11InteropFactories Factories { get; }

        public Net.Pkcs11Interop.HighLevelAPI.ISession Session { get; }

        public IObjectHandle Find(CKO objectClass, string label) =>
            Session.FindAllObjects([Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, objectClass), Factories.ObjectAttributeFactory.Create(CKA.CKA_LABEL, label)]).Single();

        public void Dispose()
        {
            Session.Dispose();
            _library.Dispose();
        }
    }
}
