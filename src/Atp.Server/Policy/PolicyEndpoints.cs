using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Problems;
using Atp.Server.Tenants;
using Microsoft.Extensions.Options;

namespace Atp.Server.Policy;

/// <summary>
/// A tenant's policy document (docs/policy.md): versioned, changed only by a proposal that a second, different person
/// approves. Every step is in the platform audit log.
/// </summary>
internal static class PolicyEndpoints
{
    private const int MaxBodyBytes = 4 * 1024;

    // Proposals read for GET: the pending ones and the newest closed ones of the history.
    private const int ProposalsRead = 2 * TenantPolicies.HistoryLimit;

    private static readonly string[] ChangeNames = ["requireSignedRequests", "requireRegisteredTypes", "classification", "retention", "requireErasureApproval"];

    public static IEndpointRouteBuilder MapPolicyEndpoints(this IEndpointRouteBuilder app)
    {
        var policy = app.MapGroup("/v1/tenants/{tenant}/policy").WithTags("Policy").RequireAuthorization(Scopes.TenantAdmin).RequireTenantAccess();

        policy.MapGet("/", GetAsync)
            .WithSummary("The tenant's active policy version, its pending proposals and its history (tenant admin, platform admin)")
            .WithDescription("The first read stores version 1: the settings the tenant has. The history holds the earlier versions and the closed proposals, newest first, at most 100 of each. A pending proposal past its expiry is shown, and recorded, as expired.")
            .WithName("getPolicy")
            .Produces<PolicyResponse>();

        policy.MapPost("/proposals", ProposeAsync)
            .WithSummary("Propose a change of the tenant's policy; it applies only when a second, different person approves it (tenant admin, platform admin)")
            .WithDescription("changes holds any of requireSignedRequests, requireRegisteredTypes and requireErasureApproval (true, false, or null for the default; requireErasureApproval true: an erasure waits for a second person's approval) and classification ({\"pii\":[JSON pointers under /data/]}, or null for none: the data fields sealed at ingest, docs/classification.md). 400 validation: a member that is not one of these or not of its form, no change, or no reason; nothing is stored. 409 policy-unchanged: the change would leave the active version as it is.")
            .WithName("proposePolicyChange")
            .WithJsonBody<ProposePolicyRequest>()
            .Produces<PolicyProposalDto>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict);

        policy.MapPost("/proposals/{id}/approve", ApproveAsync)
            .WithSummary("Approve a pending proposal: it becomes the active version at once (tenant admin, platform admin; not its proposer)")
            .WithDescription("403 self-approval: the approver is the proposer's person (the same key, another key of the same owner, the same OIDC subject). 409 proposal-not-pending: the proposal expired or was applied, rejected or closed as stale. 409 proposal-stale: another version was applied since the proposal was made; it is closed as stale, propose again.")
            .WithName("approvePolicyProposal")
            .Produces<PolicyVersionDto>()
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);

        policy.MapPost("/proposals/{id}/reject", RejectAsync)
            .WithSummary("Reject a pending proposal (tenant admin, platform admin); its proposer rejecting it withdraws it")
            .WithDescription("409 proposal-not-pending: the proposal expired or was applied, rejected or closed as stale.")
            .WithName("rejectPolicyProposal")
            .WithJsonBody<RejectProposalRequest>()
            .Produces<PolicyProposalDto>()
            .ProducesProblems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> GetAsync(HttpContext context, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        await TenantPolicies.ActiveAsync(store, tenant, now, cancellationToken).ConfigureAwait(false);
        var versions = await store.ListPolicyVersionsAsync(tenant.Id, TenantPolicies.HistoryLimit + 1, cancellationToken).ConfigureAwait(false);
        var proposals = await store.ListPolicyProposalsAsync(tenant.Id, ProposalsRead, cancellationToken).ConfigureAwait(false);
        foreach (var proposal in proposals.Where(p => p.State == PolicyProposal.Pending && p.StateAt(now) == PolicyProposal.Expired))
        {
            await ExpireAsync(context, store, audit, tenant.Id, proposal, now, cancellationToken).ConfigureAwait(false);
        }

        // StateAt shows an expired proposal as expired whether or not this request was the one that recorded it.
        return TypedResults.Ok(new PolicyResponse(
            PolicyVersionDto.Of(versions[0]),
            [.. proposals.Where(p => p.StateAt(now) == PolicyProposal.Pending).Select(p => PolicyProposalDto.Of(p, now))],
            new PolicyHistoryDto(
                [.. versions.Skip(1).Select(PolicyVersionDto.Of)],
                [.. proposals.Where(p => p.StateAt(now) != PolicyProposal.Pending).Take(TenantPolicies.HistoryLimit).Select(p => PolicyProposalDto.Of(p, now))])));
    }

    private static async Task<IResult> ProposeAsync(
        HttpContext context, ITenantStore store, PlatformAuditLog audit, IOptions<PolicyOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<ProposePolicyRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var errors = new List<string>();
        var changes = ReadChanges(request!.Changes, errors);
        if (!DisplayNames.IsValid(request.Reason))
        {
            errors.Add("reason: why the change is needed, 1-200 characters of printable text");
        }

        if (errors.Count > 0)
        {
            return Problem.Validation("The proposal is not valid; nothing was stored.", errors);
        }

        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        var active = await TenantPolicies.ActiveAsync(store, tenant, now, cancellationToken).ConfigureAwait(false);
        var document = active.Document;
        foreach (var change in changes)
        {
            document = change(document);
        }

        if (document == active.Document)
        {
            return Problem.Conflict("policy-unchanged", $"The change leaves the active policy (version {active.Version}) as it is; nothing was stored.");
        }

        var proposer = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        var proposal = new PolicyProposal("pp_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)), active.Version, document, request.Reason!.Trim(), proposer, now, now + options.Value.ProposalLifetime);
        await store.CreatePolicyProposalAsync(tenant.Id, proposal, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "policy.proposed", tenant.Id, new()
            {
                ["proposalId"] = proposal.Id,
                ["baseVersion"] = Number(active.Version),
                ["changes"] = TenantPolicies.DescribeChanges(active.Document, document),
                ["proposedBy"] = proposer,
                ["reason"] = proposal.Reason,
                ["expiresAt"] = proposal.ExpiresAt.ToString("O", CultureInfo.InvariantCulture),
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/policy", PolicyProposalDto.Of(proposal, now));
    }

    private static async Task<IResult> ApproveAsync(
        HttpContext context, string id, ITenantStore store, Classification.TenantClassifications classifications, PlatformAuditLog audit, IOptions<PolicyOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        if (await PendingAsync(context, store, audit, tenant.Id, id, now, cancellationToken).ConfigureAwait(false) is not { } proposal)
        {
            return await ClosedProblemAsync(store, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        var approver = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        if (options.Value.TwoPersonApproval && string.Equals(approver, proposal.ProposedBy, StringComparison.Ordinal))
        {
            audit.Report(PlatformEvents.Refusal(context, "policy.self-approval", tenant.Id, $"approval of proposal {proposal.Id} by its proposer"));
            return Problem.Create(403, "self-approval", "A proposal needs a second person", "The proposer cannot approve their own proposal, with this or another key of theirs or the same OIDC subject: a different person must approve it.");
        }

        var active = await TenantPolicies.ActiveAsync(store, tenant, now, cancellationToken).ConfigureAwait(false);
        var next = new PolicyVersion(proposal.BaseVersion + 1, proposal.Document, proposal.Id, proposal.ProposedBy, approver, now);
        var result = active.Version != proposal.BaseVersion
            ? PolicyApplyResult.Stale
            : await store.ApplyPolicyVersionAsync(tenant.Id, next, cancellationToken).ConfigureAwait(false);
        switch (result)
        {
            case PolicyApplyResult.Stale:
                if (await store.ClosePolicyProposalAsync(tenant.Id, proposal.Id, PolicyProposal.Stale, null, null, now, cancellationToken).ConfigureAwait(false))
                {
                    await audit.RecordAsync(PlatformEvents.AdminAction(context, "policy.proposal-stale", tenant.Id, new() { ["proposalId"] = proposal.Id, ["baseVersion"] = Number(proposal.BaseVersion) }), cancellationToken).ConfigureAwait(false);
                }

                return Problem.Conflict("proposal-stale", $"Proposal {proposal.Id} was made over version {proposal.BaseVersion}, which is no longer the active version; it is closed as stale. Propose the change again over the active version.");
            case PolicyApplyResult.NotPending:
                return await ClosedProblemAsync(store, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        classifications.Forget(tenant.Id);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, "policy.approved", tenant.Id, new()
            {
                ["proposalId"] = proposal.Id,
                ["version"] = Number(proposal.BaseVersion + 1),
                ["previousVersion"] = Number(proposal.BaseVersion),
                ["changes"] = TenantPolicies.DescribeChanges(active.Document, proposal.Document),
                ["proposedBy"] = proposal.ProposedBy,
                ["approvedBy"] = approver,
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(PolicyVersionDto.Of(next));
    }

    private static async Task<IResult> RejectAsync(HttpContext context, string id, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<RejectProposalRequest>(context, MaxBodyBytes, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (!DisplayNames.IsValid(request!.Reason))
        {
            return Problem.Validation("reason: why the proposal is rejected, 1-200 characters of printable text; nothing was changed.");
        }

        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        if (await PendingAsync(context, store, audit, tenant.Id, id, now, cancellationToken).ConfigureAwait(false) is not { } proposal)
        {
            return await ClosedProblemAsync(store, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        var rejecter = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";
        var reason = request.Reason.Trim();
        if (!await store.ClosePolicyProposalAsync(tenant.Id, proposal.Id, PolicyProposal.Rejected, rejecter, reason, now, cancellationToken).ConfigureAwait(false))
        {
            return await ClosedProblemAsync(store, tenant.Id, id, now, cancellationToken).ConfigureAwait(false);
        }

        var withdrawn = string.Equals(rejecter, proposal.ProposedBy, StringComparison.Ordinal);
        await audit.RecordAsync(
            PlatformEvents.AdminAction(context, withdrawn ? "policy.withdrawn" : "policy.rejected", tenant.Id, new()
            {
                ["proposalId"] = proposal.Id,
                ["baseVersion"] = Number(proposal.BaseVersion),
                ["proposedBy"] = proposal.ProposedBy,
                ["rejectedBy"] = rejecter,
                ["reason"] = reason,
            }),
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(PolicyProposalDto.Of(proposal with { State = PolicyProposal.Rejected, ClosedBy = rejecter, ClosedAt = now, CloseReason = reason }, now));
    }

    // The proposal when it is pending and not past its expiry; an expired one is recorded as expired on the way.
    private static async Task<PolicyProposal?> PendingAsync(HttpContext context, ITenantStore store, PlatformAuditLog audit, string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var proposal = await store.GetPolicyProposalAsync(tenantId, id, cancellationToken).ConfigureAwait(false);
        if (proposal is { State: PolicyProposal.Pending } && proposal.StateAt(now) == PolicyProposal.Expired)
        {
            await ExpireAsync(context, store, audit, tenantId, proposal, now, cancellationToken).ConfigureAwait(false);
            return null;
        }

        return proposal is { State: PolicyProposal.Pending } ? proposal : null;
    }

    private static async Task<IResult> ClosedProblemAsync(ITenantStore store, string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await store.GetPolicyProposalAsync(tenantId, id, cancellationToken).ConfigureAwait(false) is { } proposal
            ? Problem.Conflict("proposal-not-pending", $"Proposal {proposal.Id} is {proposal.StateAt(now)}; only a pending proposal can be approved or rejected.")
            : Problem.NotFound($"The tenant has no policy proposal '{id}'.");

    private static async Task ExpireAsync(HttpContext context, ITenantStore store, PlatformAuditLog audit, string tenantId, PolicyProposal proposal, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await store.ClosePolicyProposalAsync(tenantId, proposal.Id, PolicyProposal.Expired, null, null, now, cancellationToken).ConfigureAwait(false))
        {
            await audit.RecordAsync(
                PlatformEvents.AdminAction(context, "policy.proposal-expired", tenantId, new() { ["proposalId"] = proposal.Id, ["expiresAt"] = proposal.ExpiresAt.ToString("O", CultureInfo.InvariantCulture) }),
                cancellationToken).ConfigureAwait(false);
        }
    }

    // The members of changes with their new values; errors for anything else.
    private static List<Func<PolicyDocument, PolicyDocument>> ReadChanges(JsonElement changes, List<string> errors)
    {
        var read = new List<Func<PolicyDocument, PolicyDocument>>();
        if (changes.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"changes: an object with one or more of {string.Join(", ", ChangeNames)}");
            return read;
        }

        foreach (var member in changes.EnumerateObject())
        {
            if (!ChangeNames.Contains(member.Name, StringComparer.Ordinal))
            {
                errors.Add($"changes.{member.Name}: unknown; a policy holds {string.Join(", ", ChangeNames)}");
            }
            else if (member.Name == "classification")
            {
                var classification = FieldClassification.Read(member.Value, "changes.classification", errors);
                // A classification that names no field is the same policy as none, so it is stored as null.
                read.Add(d => d with { Classification = classification is not null && classification.Pii.Count + classification.Secret.Count > 0 ? classification : null });
            }
            else if (member.Name == "retention")
            {
                // An object that expires nothing is the same policy as none, so it is stored as null.
                var policy = member.Value.ValueKind == JsonValueKind.Null ? null : RetentionPolicy.Read(member.Value, "changes.retention", errors);
                var retention = policy is { Days: null, Types.Count: 0 } ? null : policy;
                read.Add(d => d with { Retention = retention });
            }
            else if (member.Value.ValueKind is JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null)
            {
                bool? value = member.Value.ValueKind == JsonValueKind.Null ? null : member.Value.GetBoolean();
                read.Add(member.Name switch
                {
                    "requireSignedRequests" => d => d with { RequireSignedRequests = value },
                    "requireRegisteredTypes" => d => d with { RequireRegisteredTypes = value },
                    _ => d => d with { RequireErasureApproval = value },
                });
            }
            else
            {
                errors.Add($"changes.{member.Name}: true, false, or null for the default");
            }
        }

        if (read.Count == 0 && errors.Count == 0)
        {
            errors.Add($"changes: name one or more of {string.Join(", ", ChangeNames)}");
        }

        return read;
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
