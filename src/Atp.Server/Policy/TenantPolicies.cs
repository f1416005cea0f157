using Atp.Core.Policy;
using Atp.Core.Storage;
using Atp.Core.Tenants;

namespace Atp.Server.Policy;

/// <summary>The rules around a tenant's policy versions that both the policy endpoints and the tenant PATCH follow.</summary>
internal static class TenantPolicies
{
    /// <summary>Versions and closed proposals shown in a policy's history.</summary>
    public const int HistoryLimit = 100;

    /// <summary>
    /// The tenant's active version; the first read stores version 1 from the settings the tenant has. Two first reads
    /// at once store one version 1 (the primary key); the loser reads the winner's.
    /// </summary>
    public static async Task<PolicyVersion> ActiveAsync(ITenantStore store, Tenant tenant, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(tenant);
        for (var attempt = 0; ; attempt++)
        {
            if ((await store.ListPolicyVersionsAsync(tenant.Id, 1, cancellationToken).ConfigureAwait(false)) is [var active])
            {
                return active;
            }

            var first = new PolicyVersion(1, PolicyDocument.Of(tenant.Settings), null, null, null, now);
            if (await store.ApplyPolicyVersionAsync(tenant.Id, first, cancellationToken).ConfigureAwait(false) == PolicyApplyResult.Applied || attempt > 0)
            {
                return first;
            }
        }
    }

    /// <summary>The members that differ, as "name: old -> new; …", for the platform audit log.</summary>
    public static string DescribeChanges(PolicyDocument from, PolicyDocument to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var changes = new List<string>();
        if (from.RequireSignedRequests != to.RequireSignedRequests)
        {
            changes.Add($"requireSignedRequests: {Text(from.RequireSignedRequests)} -> {Text(to.RequireSignedRequests)}");
        }

        if (from.RequireRegisteredTypes != to.RequireRegisteredTypes)
        {
            changes.Add($"requireRegisteredTypes: {Text(from.RequireRegisteredTypes)} -> {Text(to.RequireRegisteredTypes)}");
        }

        if (from.Classification != to.Classification)
        {
            changes.Add($"classification.pii: {Pointers(from.Classification)} -> {Pointers(to.Classification)}");
        }

        if (!Equals(from.Retention, to.Retention))
        {
            changes.Add($"retention: {Text(from.Retention)} -> {Text(to.Retention)}");
        }

        if (from.RequireErasureApproval != to.RequireErasureApproval)
        {
            changes.Add($"requireErasureApproval: {Text(from.RequireErasureApproval)} -> {Text(to.RequireErasureApproval)}");
        }

        return changes.Count == 0 ? "none" : string.Join("; ", changes);
    }

    private static string Pointers(FieldClassification? classification) =>
        classification is { } c && c.Pii.Count + c.Secret.Count > 0
            ? "[" + string.Join(", ", c.Pii) + "]" + (c.SubjectTargetType is { } type ? $" of the first target of type {type}" : "")
              + (c.Secret.Count > 0 ? " secret [" + string.Join(", ", c.Secret) + "]" : "")
            : "none";

    private static string Text(RetentionPolicy? retention) => retention is null
        ? "none"
        : $"days {retention.Days?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, {retention.Types.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)} types";

    private static string Text(bool? value) => value switch { true => "true", false => "false", null => "default" };
}
