using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Atp.Cli.Requests;

namespace Atp.Cli.Holds;

/// <summary>
/// <c>atp holds place|list|release</c>: a tenant's legal holds on a running cell, through its
/// <c>/v1/tenants/{tenant}/holds</c> API. The caller's tenant-admin (or platform-admin) key comes from
/// <c>ATP_API_KEY</c>, never an argument. The server's answer is printed as it came; the server checks the hold.
/// </summary>
internal static class HoldsCommand
{
    public static Command Create(CliEnvironment environment)
    {
        var holds = new Command("holds", $"Legal holds of a tenant on a running cell (your tenant-admin key from ${RequestCommand.ApiKeyVariable}).");

        var placeUrl = TenantAdminApi.UrlOption();
        var placeTenant = TenantAdminApi.TenantOption();
        var reason = TenantAdminApi.ReasonOption("Why: the matter or case, 1-1024 characters");
        var types = new Option<string[]>("--event-type") { Description = "Hold events of this type (repeatable; default: every type)", Arity = ArgumentArity.OneOrMore };
        var actor = new Option<string>("--actor") { Description = "Hold events whose actor has this id" };
        var target = new Option<string>("--target") { Description = "Hold events with a target of this id" };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Hold events that occurred at or after this time (RFC 3339)" };
        var until = new Option<DateTimeOffset?>("--until") { Description = "Hold events that occurred before this time (RFC 3339)" };
        var place = new Command("place", "Place a legal hold; with no --event-type, --actor, --target, --from or --until it holds the tenant's whole log.")
        {
            placeUrl, placeTenant, reason, types, actor, target, from, until,
        };
        place.SetAction((parse, ct) =>
        {
            var scope = new JsonObject();
            if (parse.GetValue(types) is { Length: > 0 } eventTypes)
            {
                scope["eventTypes"] = new JsonArray([.. eventTypes.Select(t => JsonValue.Create(t))]);
            }

            Add(scope, "actorId", parse.GetValue(actor));
            Add(scope, "targetId", parse.GetValue(target));
            Add(scope, "from", parse.GetValue(from)?.ToString("O", CultureInfo.InvariantCulture));
            Add(scope, "until", parse.GetValue(until)?.ToString("O", CultureInfo.InvariantCulture));
            var body = new JsonObject { ["scope"] = scope, ["reason"] = parse.GetValue(reason) };
            return CallAsync(environment, HttpMethod.Post, parse.GetValue(placeUrl)!, parse.GetValue(placeTenant)!, "", body.ToJsonString(), parse, ct);
        });
        holds.Subcommands.Add(place);

        var listUrl = TenantAdminApi.UrlOption();
        var listTenant = TenantAdminApi.TenantOption();
        var includeReleased = new Option<bool>("--include-released") { Description = "Also list released holds" };
        var list = new Command("list", "List the tenant's active legal holds, newest first.") { listUrl, listTenant, includeReleased };
        list.SetAction((parse, ct) => CallAsync(
            environment, HttpMethod.Get, parse.GetValue(listUrl)!, parse.GetValue(listTenant)!, parse.GetValue(includeReleased) ? "?includeReleased=true" : "", null, parse, ct));
        holds.Subcommands.Add(list);

        var releaseUrl = TenantAdminApi.UrlOption();
        var releaseTenant = TenantAdminApi.TenantOption();
        var holdId = new Argument<string>("hold-id") { Description = "The hold to release" };
        var releaseReason = TenantAdminApi.ReasonOption("Why the hold no longer applies, 1-1024 characters (recorded in the platform audit log)");
        var release = new Command("release", "Release an active legal hold.") { releaseUrl, releaseTenant, holdId, releaseReason };
        release.SetAction((parse, ct) => CallAsync(
            environment, HttpMethod.Post, parse.GetValue(releaseUrl)!, parse.GetValue(releaseTenant)!,
            "/" + Uri.EscapeDataString(parse.GetValue(holdId)!) + "/release",
            new JsonObject { ["reason"] = parse.GetValue(releaseReason) }.ToJsonString(), parse, ct));
        holds.Subcommands.Add(release);
        return holds;
    }

    private static void Add(JsonObject scope, string name, string? value)
    {
        if (value is not null)
        {
            scope[name] = value;
        }
    }

    private static Task<int> CallAsync(
        CliEnvironment environment, HttpMethod method, string baseUrl, string tenant, string suffix, string? json, ParseResult parse, CancellationToken cancellationToken) =>
        TenantAdminApi.CallAsync(environment, method, baseUrl, tenant, "holds" + suffix, json, parse, cancellationToken);
}
