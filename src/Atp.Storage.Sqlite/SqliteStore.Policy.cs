using Atp.Core.Policy;
using Microsoft.Data.Sqlite;

namespace Atp.Storage.Sqlite;

/// <summary>Policy versions and proposals (docs/policy.md): every statement is keyed by the tenant.</summary>
public sealed partial class SqliteStore
{
    private const string ProposalColumns = "id, base_version, document, reason, proposed_by, created_at, expires_at, state, closed_by, closed_at, close_reason";

    public async Task<IReadOnlyList<PolicyVersion>> ListPolicyVersionsAsync(string tenantId, int limit, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, document, proposal_id, proposed_by, approved_by, applied_at FROM policy_versions WHERE tenant_id = $tenant ORDER BY version DESC LIMIT $limit";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var versions = new List<PolicyVersion>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            versions.Add(new PolicyVersion(
                reader.GetInt32(0), PolicyDocument.FromJson(reader.GetString(1)), NullableString(reader, 2), NullableString(reader, 3), NullableString(reader, 4),
                new DateTimeOffset(reader.GetInt64(5), TimeSpan.Zero)));
        }

        return versions;
    }

    public async Task<PolicyApplyResult> ApplyPolicyVersionAsync(string tenantId, PolicyVersion version, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(version);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);

        // BEGIN IMMEDIATE: the write lock is taken first, so two approvals on this file run one after the other.
        using var transaction = connection.BeginTransaction();
        if (version.ProposalId is { } proposalId)
        {
            using var close = connection.CreateCommand();
            close.Transaction = transaction;
            close.CommandText = "UPDATE policy_proposals SET state = 'applied', closed_by = $by, closed_at = $at WHERE tenant_id = $tenant AND id = $id AND state = 'pending'";
            close.Parameters.AddWithValue("$tenant", tenantId);
            close.Parameters.AddWithValue("$id", proposalId);
            close.Parameters.AddWithValue("$by", (object?)version.ApprovedBy ?? DBNull.Value);
            close.Parameters.AddWithValue("$at", version.AppliedAt.UtcTicks);
            if (await close.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return PolicyApplyResult.NotPending;
            }
        }

        // The primary key is the compare-and-swap: version N+1 exists only if N was the active one when it was stored.
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO policy_versions (tenant_id, version, document, proposal_id, proposed_by, approved_by, applied_at)
            SELECT $tenant, $version, $document, $proposal, $proposedBy, $approvedBy, $at
            WHERE $version = 1 OR EXISTS (SELECT 1 FROM policy_versions WHERE tenant_id = $tenant AND version = $version - 1)
            ON CONFLICT (tenant_id, version) DO NOTHING
            """;
        insert.Parameters.AddWithValue("$tenant", tenantId);
        insert.Parameters.AddWithValue("$version", version.Version);
        insert.Parameters.AddWithValue("$document", version.Document.ToJson());
        insert.Parameters.AddWithValue("$proposal", (object?)version.ProposalId ?? DBNull.Value);
        insert.Parameters.AddWithValue("$proposedBy", (object?)version.ProposedBy ?? DBNull.Value);
        insert.Parameters.AddWithValue("$approvedBy", (object?)version.ApprovedBy ?? DBNull.Value);
        insert.Parameters.AddWithValue("$at", version.AppliedAt.UtcTicks);
        if (await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return PolicyApplyResult.Stale;
        }

        using var settings = connection.CreateCommand();
        settings.Transaction = transaction;
        settings.CommandText = "UPDATE tenants SET require_signed_requests = $signed, require_registered_types = $registered WHERE id = $tenant";
        settings.Parameters.AddWithValue("$tenant", tenantId);
        settings.Parameters.AddWithValue("$signed", version.Document.RequireSignedRequests is { } signed ? (signed ? 1 : 0) : DBNull.Value);
        settings.Parameters.AddWithValue("$registered", version.Document.RequireRegisteredTypes is { } registered ? (registered ? 1 : 0) : DBNull.Value);
        await settings.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return PolicyApplyResult.Applied;
    }

    public async Task CreatePolicyProposalAsync(string tenantId, PolicyProposal proposal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(proposal);
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO policy_proposals (tenant_id, {ProposalColumns}) VALUES ($tenant, $id, $base, $document, $reason, $by, $created, $expires, $state, NULL, NULL, NULL)";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", proposal.Id);
        command.Parameters.AddWithValue("$base", proposal.BaseVersion);
        command.Parameters.AddWithValue("$document", proposal.Document.ToJson());
        command.Parameters.AddWithValue("$reason", proposal.Reason);
        command.Parameters.AddWithValue("$by", proposal.ProposedBy);
        command.Parameters.AddWithValue("$created", proposal.CreatedAt.UtcTicks);
        command.Parameters.AddWithValue("$expires", proposal.ExpiresAt.UtcTicks);
        command.Parameters.AddWithValue("$state", proposal.State);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<PolicyProposal?> GetPolicyProposalAsync(string tenantId, string proposalId, CancellationToken cancellationToken) =>
        (await QueryProposalsAsync(tenantId, proposalId, 1, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<PolicyProposal>> ListPolicyProposalsAsync(string tenantId, int limit, CancellationToken cancellationToken) =>
        QueryProposalsAsync(tenantId, null, limit, cancellationToken);

    public async Task<bool> ClosePolicyProposalAsync(string tenantId, string proposalId, string state, string? closedBy, string? reason, DateTimeOffset closedAt, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE policy_proposals SET state = $state, closed_by = $by, closed_at = $at, close_reason = $reason WHERE tenant_id = $tenant AND id = $id AND state = 'pending'";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", proposalId);
        command.Parameters.AddWithValue("$state", state);
        command.Parameters.AddWithValue("$by", (object?)closedBy ?? DBNull.Value);
        command.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
        command.Parameters.AddWithValue("$at", closedAt.UtcTicks);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<IReadOnlyList<PolicyProposal>> QueryProposalsAsync(string tenantId, string? proposalId, int limit, CancellationToken cancellationToken)
    {
        using var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {ProposalColumns} FROM policy_proposals WHERE tenant_id = $tenant AND ($id IS NULL OR id = $id) ORDER BY created_at DESC, id DESC LIMIT $limit";
        command.Parameters.AddWithValue("$tenant", tenantId);
        command.Parameters.AddWithValue("$id", (object?)proposalId ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var proposals = new List<PolicyProposal>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            proposals.Add(new PolicyProposal(
                reader.GetString(0), reader.GetInt32(1), PolicyDocument.FromJson(reader.GetString(2)), reader.GetString(3), reader.GetString(4),
                new DateTimeOffset(reader.GetInt64(5), TimeSpan.Zero), new DateTimeOffset(reader.GetInt64(6), TimeSpan.Zero))
            {
                State = reader.GetString(7),
                ClosedBy = NullableString(reader, 8),
                ClosedAt = reader.IsDBNull(9) ? null : new DateTimeOffset(reader.GetInt64(9), TimeSpan.Zero),
                CloseReason = NullableString(reader, 10),
            });
        }

        return proposals;
    }

    private static string? NullableString(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
}
