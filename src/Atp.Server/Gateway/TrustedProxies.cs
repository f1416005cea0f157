using System.Net;
using Microsoft.AspNetCore.HttpOverrides;

namespace Atp.Server.Gateway;

/// <summary>
/// Forwarded headers (<c>X-Forwarded-For</c>, <c>-Proto</c>, <c>-Host</c>) are believed only from the proxies named in
/// <c>Atp:Gateway:KnownProxies</c> (addresses) and <c>Atp:Gateway:KnownNetworks</c> (CIDR). With neither set they are
/// ignored: a client could otherwise pick its own address (escaping per-IP limits, forging audit records) or the URI
/// its signature covers. With a proxy configured, per-IP limits, the failure lockout, audit records and the
/// <c>@target-uri</c> of signed requests see the client's address and the public URL.
/// </summary>
internal static class TrustedProxies
{
    public const string Section = "Atp:Gateway";

    /// <summary>The middleware's options, or null when no proxy is trusted. Throws with one clear sentence on a bad entry.</summary>
    public static ForwardedHeadersOptions? FromConfiguration(IConfiguration configuration)
    {
        var proxies = configuration.GetSection(Section + ":KnownProxies").Get<string[]>() ?? [];
        var networks = configuration.GetSection(Section + ":KnownNetworks").Get<string[]>() ?? [];
        if (proxies.Length == 0 && networks.Length == 0)
        {
            return null;
        }

        var options = new ForwardedHeadersOptions
        {
            ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost,

            // One proxy hop: the address the trusted proxy saw. Deeper chains list each proxy in KnownProxies.
            ForwardLimit = 1 + proxies.Length + networks.Length,
        };

        // ASP.NET Core trusts loopback by default; only what the operator names is trusted here.
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        foreach (var proxy in proxies)
        {
            options.KnownProxies.Add(IPAddress.TryParse(proxy, out var address)
                ? address
                : throw new InvalidOperationException($"{Section}:KnownProxies has '{proxy}', which is not an IP address."));
        }

        foreach (var network in networks)
        {
            options.KnownIPNetworks.Add(System.Net.IPNetwork.TryParse(network, out var parsed)
                ? parsed
                : throw new InvalidOperationException($"{Section}:KnownNetworks has '{network}', which is not a CIDR network such as 10.0.0.0/8."));
        }

        return options;
    }
}
