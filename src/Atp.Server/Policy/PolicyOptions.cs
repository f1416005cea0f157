using System.ComponentModel.DataAnnotations;

namespace Atp.Server.Policy;

/// <summary>Policy documents with two-person approval (section <c>Atp:Policy</c>; docs/policy.md).</summary>
public sealed class PolicyOptions
{
    public const string Section = "Atp:Policy";

    /// <summary>How long a proposal waits for its second person; after that it can only be proposed again.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "90.00:00:00")]
    public TimeSpan ProposalLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Whether a policy change needs a second, different person's approval (and PATCH of a tenant's policy settings is
    /// refused). False only for single-operator installations: a proposer may then approve their own proposal.
    /// </summary>
    public bool TwoPersonApproval { get; set; } = true;
}
