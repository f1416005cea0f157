using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// First start: when no platform admin exists and <c>Atp:Bootstrap:AdminKey</c> is unset, generate one, store its hash
/// and write it to <c>{DataDirectory}/bootstrap-admin.key</c> (owner-only). The console gets only where the key is:
/// standard output ends in journald or a container log, where a secret must never be.
/// </summary>
internal static partial class BootstrapAdmin
{
    public static async Task EnsureAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var options = services.GetRequiredService<IOptions<AtpOptions>>().Value;
        if (!string.IsNullOrEmpty(options.Bootstrap.AdminKey))
        {
            if (!ApiKeyFormat.IsWellFormed(options.Bootstrap.AdminKey))
            {
                throw new OptionsValidationException("Atp:Bootstrap:AdminKey", typeof(BootstrapOptions), ["Atp:Bootstrap:AdminKey is not a well-formed ATP API key (atp_…); generate one with a first start without it."]);
            }

            return;
        }

        var store = services.GetRequiredService<ITenantStore>();
        if (await store.HasPlatformAdminKeyAsync(cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var secret = ApiKeyFormat.Generate();
        var clock = services.GetRequiredService<TimeProvider>();
        var key = new ApiKey(ApiKeyFormat.NewId(), null, "bootstrap platform admin", [Scopes.PlatformAdmin], ApiKeyFormat.Hash(secret), clock.GetUtcNow())
        {
            ExpiresAt = clock.GetUtcNow() + options.Bootstrap.GeneratedKeyLifetime,
        };
        var path = Path.Combine(Path.GetFullPath(options.DataDirectory), "bootstrap-admin.key");
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        OwnerOnlyFile.Write(path, secret + "\n");
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);

        var expiry = key.ExpiresAt is { } at ? $" It expires at {at:O}." : "";
        await Console.Out.WriteLineAsync($"""

            ATP first start: a platform-admin API key was generated and saved (owner-only) to
            {path}
            Read it from that file; it is not printed anywhere.{expiry} Rotate or revoke it with
            'atp admin keys' or the /v1/admin/keys API once you have created your own.

            """).ConfigureAwait(false);
    }
}
