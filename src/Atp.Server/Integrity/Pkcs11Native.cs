using System.Reflection;
using System.Runtime.InteropServices;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Atp.Server.Integrity;

/// <summary>
/// Lets Pkcs11Interop load PKCS#11 modules on current Linux: it P/Invokes <c>dlopen</c> from "libdl", a name that only
/// exists where the C development files are installed (glibc ships the runtime as <c>libdl.so.2</c>).
/// </summary>
internal static class Pkcs11Native
{
    private static readonly Lazy<bool> Resolver = new(() =>
    {
        NativeLibrary.SetDllImportResolver(typeof(IPkcs11Library).Assembly, Resolve);
        return true;
    });

    /// <summary>Installs the resolver once per process (the runtime allows one per assembly).</summary>
    public static void EnsureLoadable() => _ = Resolver.Value;

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (OperatingSystem.IsLinux() && libraryName == "libdl" && !NativeLibrary.TryLoad(libraryName, assembly, searchPath, out _))
        {
            return NativeLibrary.Load("libdl.so.2");
        }

        return IntPtr.Zero;
    }
}
