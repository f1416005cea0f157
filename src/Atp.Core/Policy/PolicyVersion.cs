namespace Atp.Core.Policy;

/// <summary>
/// One immutable version of a tenant's policy. Version 1 is the settings the tenant had when its policy was first
/// read; each later one was applied by an approved proposal (or, with two-person approval off, by one admin).
/// </summary>
/// <param name="Version">1, 2, 3, … in the order they were applied.</param>
/// <param name="Document">The policy this version made active.</param>
/// <param name="ProposalId">The proposal it applied; null for version 1 and for direct changes.</param>
/// <param name="ProposedBy">The person who proposed it (null for version 1).</param>
/// <param name="ApprovedBy">The person who approved it (null for version 1).</param>
/// <param name="AppliedAt">When it became active.</param>
public sealed record PolicyVersion(
    int Version,
    PolicyDocument Document,
    string? ProposalId,
    string? ProposedBy,
    string? ApprovedBy,
    DateTimeOffset AppliedAt);
