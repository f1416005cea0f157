namespace Atp.Cli.Tests;

/// <summary>The environment of a tenant admin running <c>atp holds</c> or <c>atp erasures</c>: a key in <c>ATP_API_KEY</c> (or none).</summary>
internal static class TenantAdminEnvironment
{
    public const string ApiKey = "atp_test_tenant_admin_key";

    public static CliEnvironment With(string? apiKey = ApiKey) => new(
        name => name == "ATP_API_KEY" ? apiKey : null,
        () => new MemoryStream(),
        TimeProvider.System);
}
