namespace Atp.Integrity.Tests;

internal static class TestData
{
    public static string TlogDirectory => Path.Combine(AppContext.BaseDirectory, "TestData", "tlog");
}
