using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Server.Integrity;
using Microsoft.Extensions.Options;

namespace Atp.Server.Gateway;

/// <summary>
/// First start: when no platform admin exists and <c>Atp:Bootstrap:AdminKey</c> is unset, generate one, store its hash,
/// print it once to the console and write it to <c>{DataDirectory}/bootstrap-admin.key</c> (owner-only).
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
        var key = new ApiKey(ApiKeyFormat.NewId(), null, "bootstrap platform admin", [Scopes.PlatformAdmin], ApiKeyFormat.Hash(secret), clock.GetUtcNow());
        var path = Path.Combine(Path.GetFullPath(options.DataDirectory), "bootstrap-admin.key");
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        OwnerOnlyFile.Write(path, secret + "\n");
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);

        // Printed once, to the console only (never to a log sink): the operator needs it to create the first tenant.
        await Console.Out.WriteLineAsync($"""

            ATP first start: a platform-admin API key was generated. It is shown only this once
            and saved (owner-only) to {path}:

                {secret}

            """).ConfigureAwait(false);
    }
}
