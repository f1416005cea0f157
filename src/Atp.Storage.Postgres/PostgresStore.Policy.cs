using Atp.Core.Policy;
using Npgsql;

namespace Atp.Storage.Postgres;

/// <summary>Policy versions and proposals (docs/policy.md): every statement runs as the tenant, under row-level security.</summary>
public sealed partial class PostgresStore
{
    private const string ProposalColumns = "proposal_id, base_version, document, reason, proposed_by, created_at, expires_at, state, closed_by, closed_at, close_reason";

    public Task<IReadOnlyList<PolicyVersion>> ListPolicyVersionsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            tenantId,
            "SELECT version, document, proposal_id, proposed_by, approved_by, applied_at FROM atp.policy_versions WHERE tenant_id = $1 ORDER BY version DESC LIMIT $2",
            [tenantId, limit],
            reader => new PolicyVersion(
                reader.GetInt32(0), PolicyDocument.FromJson(reader.GetString(1)), NullableString(reader, 2), NullableString(reader, 3), NullableString(reader, 4),
                Ticks(reader, 5)!.Value),
            cancellationToken);

    public async Task<PolicyApplyResult> ApplyPolicyVersionAsync(string tenantId, PolicyVersion version, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(version);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await RunAsync(connection, transaction, TenantScope.SetTenantSql, [tenantId], cancellationToken).ConfigureAwait(false);
        if (version.ProposalId is { } proposalId
            && await RunAsync(
                connection, transaction,
                "UPDATE atp.policy_proposals SET state = 'applied', closed_by = $3, closed_at = $4 WHERE tenant_id = $1 AND proposal_id = $2 AND state = 'pending'",
                [tenantId, proposalId, version.ApprovedBy, version.AppliedAt.UtcTicks], cancellationToken).ConfigureAwait(false) != 1)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return PolicyApplyResult.NotPending;
        }

        // The primary key is the compare-and-swap: a concurrent insert of the same version waits for the first one's
        // transaction and then does nothing, so of two approvals over the same active version exactly one applies.
        var inserted = await RunAsync(
            connection, transaction,
            """
            INSERT INTO atp.policy_versions (tenant_id, version, document, proposal_id, proposed_by, approved_by, applied_at)
            SELECT $1, $2, $3, $4, $5, $6, $7
            WHERE $2 = 1 OR EXISTS (SELECT 1 FROM atp.policy_versions WHERE tenant_id = $1 AND version = $2 - 1)
            ON CONFLICT (tenant_id, version) DO NOTHING
            """,
            [tenantId, version.Version, version.Document.ToJson(), version.ProposalId, version.ProposedBy, version.ApprovedBy, version.AppliedAt.UtcTicks],
            cancellationToken).ConfigureAwait(false);
        if (inserted != 1)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return PolicyApplyResult.Stale;
        }

        await RunAsync(
            connection, transaction,
            "UPDATE atp.tenants SET require_signed_requests = $2, require_registered_types = $3 WHERE tenant_id = $1",
            [tenantId, version.Document.RequireSignedRequests, version.Document.RequireRegisteredTypes], cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return PolicyApplyResult.Applied;
    }

    public async Task CreatePolicyProposalAsync(string tenantId, PolicyProposal proposal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(proposal);
        await ExecuteAsync(
            tenantId,
            $"INSERT INTO atp.policy_proposals (tenant_id, {ProposalColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL)",
            [tenantId, proposal.Id, proposal.BaseVersion, proposal.Document.ToJson(), proposal.Reason, proposal.ProposedBy, proposal.CreatedAt.UtcTicks, proposal.ExpiresAt.UtcTicks, proposal.State],
            cancellationToken).ConfigureAwait(false);
    }

    public async Task<PolicyProposal?> GetPolicyProposalAsync(string tenantId, string proposalId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            tenantId, $"SELECT {ProposalColumns} FROM atp.policy_proposals WHERE tenant_id = $1 AND proposal_id = $2", [tenantId, proposalId], ReadProposal, cancellationToken).ConfigureAwait(false))
        .SingleOrDefault();

    public Task<IReadOnlyList<PolicyProposal>> ListPolicyProposalsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            tenantId, $"SELECT {ProposalColumns} FROM atp.policy_proposals WHERE tenant_id = $1 ORDER BY created_at DESC, proposal_id DESC LIMIT $2", [tenantId, limit], ReadProposal, cancellationToken);

    public async Task<bool> ClosePolicyProposalAsync(string tenantId, string proposalId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            tenantId,
            "UPDATE atp.policy_proposals SET state = $3, closed_by = $4, closed_at = $5, close_reason = $6 WHERE tenant_id = $1 AND proposal_id = $2 AND state = 'pending'",
            [tenantId, proposalId, state, closedBy, closedAt.UtcTicks, reason],
            cancellationToken).ConfigureAwait(false) == 1;

    private static async Task<int> RunAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, object?[] values, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static PolicyProposal ReadProposal(NpgsqlDataReader reader) =>
        new(reader.GetString(0), reader.GetInt32(1), PolicyDocument.FromJson(reader.GetString(2)), reader.GetString(3), reader.GetString(4), Ticks(reader, 5)!.Value, Ticks(reader, 6)!.Value)
        {
            State = reader.GetString(7),
            ClosedBy = NullableString(reader, 8),
            ClosedAt = Ticks(reader, 9),
            CloseReason = NullableString(reader, 10),
        };

    private static string? NullableString(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
}
