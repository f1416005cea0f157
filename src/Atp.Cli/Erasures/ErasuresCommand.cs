using System.CommandLine;
using System.Text.Json.Nodes;
using Atp.Cli.Requests;

namespace Atp.Cli.Erasures;

/// <summary>
/// <c>atp erasures request|list|approve|reject</c>: a tenant's erasures of data subjects on a running cell, through its
/// <c>/v1/tenants/{tenant}/erasures</c> API (docs/api.md, "Erasure"). The server decides: with the tenant's policy
/// member requireErasureApproval a request waits for a second person's approval, without it the subject is erased at once.
/// </summary>
internal static class ErasuresCommand
{
    public static Command Create(CliEnvironment environment)
    {
        var erasures = new Command("erasures", $"Erasures of data subjects of a tenant on a running cell (your tenant-admin key from ${RequestCommand.ApiKeyVariable}).");

        var requestUrl = TenantAdminApi.UrlOption();
        var requestTenant = TenantAdminApi.TenantOption();
        var subject = new Option<string>("--subject") { Description = "The data subject: the actor id whose sealed fields become unreadable", Required = true };
        var reason = TenantAdminApi.ReasonOption("Why: name the request (e.g. its ticket), not the person, 1-1024 characters; stored in the tenant's log");
        var request = new Command("request", "Erase a data subject: at once (201), or, when the tenant's policy requires approval, as a pending request a second person approves (202).")
        {
            requestUrl, requestTenant, subject, reason,
        };
        request.SetAction((parse, ct) => TenantAdminApi.CallAsync(
            environment, HttpMethod.Post, parse.GetValue(requestUrl)!, parse.GetValue(requestTenant)!, "erasures",
            new JsonObject { ["subject"] = parse.GetValue(subject), ["reason"] = parse.GetValue(reason) }.ToJsonString(), parse, ct));
        erasures.Subcommands.Add(request);

        var listUrl = TenantAdminApi.UrlOption();
        var listTenant = TenantAdminApi.TenantOption();
        var state = new Option<string>("--state") { Description = "Only requests in this state" };
        state.AcceptOnlyFromAmong("pending", "approved", "rejected", "expired", "failed");
        var list = new Command("list", "List the tenant's erasure requests, newest first.") { listUrl, listTenant, state };
        list.SetAction((parse, ct) => TenantAdminApi.CallAsync(
            environment, HttpMethod.Get, parse.GetValue(listUrl)!, parse.GetValue(listTenant)!,
            "erasures" + (parse.GetValue(state) is { } only ? "?state=" + only : ""), null, parse, ct));
        erasures.Subcommands.Add(list);

        var approveUrl = TenantAdminApi.UrlOption();
        var approveTenant = TenantAdminApi.TenantOption();
        var approveId = RequestId("The pending request to approve");
        var approve = new Command("approve", "Approve a pending erasure request (not your own): the subject is erased at once.") { approveUrl, approveTenant, approveId };
        approve.SetAction((parse, ct) => TenantAdminApi.CallAsync(
            environment, HttpMethod.Post, parse.GetValue(approveUrl)!, parse.GetValue(approveTenant)!,
            "erasures/" + Uri.EscapeDataString(parse.GetValue(approveId)!) + "/approve", null, parse, ct));
        erasures.Subcommands.Add(approve);

        var rejectUrl = TenantAdminApi.UrlOption();
        var rejectTenant = TenantAdminApi.TenantOption();
        var rejectId = RequestId("The pending request to reject");
        var rejectReason = TenantAdminApi.ReasonOption("Why it is rejected, 1-1024 characters (recorded in the platform audit log)");
        var reject = new Command("reject", "Reject (or, as its requester, withdraw) a pending erasure request.") { rejectUrl, rejectTenant, rejectId, rejectReason };
        reject.SetAction((parse, ct) => TenantAdminApi.CallAsync(
            environment, HttpMethod.Post, parse.GetValue(rejectUrl)!, parse.GetValue(rejectTenant)!,
            "erasures/" + Uri.EscapeDataString(parse.GetValue(rejectId)!) + "/reject",
            new JsonObject { ["reason"] = parse.GetValue(rejectReason) }.ToJsonString(), parse, ct));
        erasures.Subcommands.Add(reject);
        return erasures;
    }

    private static Argument<string> RequestId(string description) => new("request-id") { Description = description };
}
