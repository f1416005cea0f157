using System.Formats.Tar;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Integrity;

namespace Atp.Core.Export;

/// <summary>What an import did: refused (and why), or how many entries it appended and the tree size it now has.</summary>
public sealed record BundleImportResult(bool Refused, string Message, ulong Appended, ulong TreeSize);

/// <summary>
/// Appends a verified complete bundle to a read-only replica tenant (<see cref="Tenant.Replica"/>) with the same indexes
/// and leaf bytes, so the replica's roots are the source's, and stores the source's signed checkpoint verbatim.
/// Re-importing a bundle changes nothing; a bundle that does not continue the imported log (a gap, or a different
/// history: the edge, the already imported entries or the root differ) is refused before anything is stored. A crash
/// part-way leaves a prefix of the bundle, which importing the same bundle again checks and completes.
/// </summary>
public sealed class BundleImporter
{
    private const int BatchSize = 1000;
    private readonly ITenantStore _tenants;
    private readonly ILogStore _logs;
    private readonly TimeProvider _clock;

    public BundleImporter(ITenantStore tenants, ILogStore logs, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(tenants);
        ArgumentNullException.ThrowIfNull(logs);
        ArgumentNullException.ThrowIfNull(clock);
        _tenants = tenants;
        _logs = logs;
        _clock = clock;
    }

    /// <summary>
    /// Imports <paramref name="bundle"/> (read from its start), whose <paramref name="manifest"/> the caller has verified
    /// with <see cref="BundleVerifier"/>; a new replica tenant is created in <paramref name="region"/>.
    /// </summary>
    public async Task<BundleImportResult> ImportAsync(Stream bundle, BundleManifest manifest, string region, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(manifest);
        if (!manifest.Complete)
        {
            return Refuse("a filtered bundle holds only some entries; only complete bundles can be imported");
        }

        var tenantId = manifest.Tenant;
        if (!TenantRules.IsValidId(tenantId))
        {
            return Refuse($"'{tenantId}' is not a valid tenant id");
        }

        var tenant = await _tenants.GetTenantAsync(tenantId, cancellationToken).ConfigureAwait(false);
        if (tenant is not null && !tenant.IsReplica)
        {
            return Refuse($"tenant {tenantId} exists in this cell and is not a replica; a bundle is only imported into a replica");
        }

        var size = tenant is null ? 0 : (await _logs.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false))?.Size ?? 0;
        if (tenant is not null && await _logs.GetLatestCheckpointAsync(tenantId, cancellationToken).ConfigureAwait(false) is { } latest
            && SignedNote.TryParse(latest.Note, out var latestNote, out _) && Checkpoint.TryParse(latestNote.Text, out var latestCheckpoint, out _)
            && latestCheckpoint.Origin != manifest.Origin)
        {
            return Refuse($"the replica holds the log {latestCheckpoint.Origin}, the bundle is of {manifest.Origin}");
        }

        if (size < manifest.From)
        {
            return Refuse($"the bundle starts at index {manifest.From} but the imported log has {size} entries: import the bundles in between first");
        }

        var proofs = new ProofBuilder(_logs.NodeReader(tenantId));
        if (manifest.From > 0)
        {
            var ids = CompactRange.EdgeNodes(manifest.From);
            var edge = new Hash[ids.Length];
            await _logs.NodeReader(tenantId).ReadNodesAsync(ids, edge, cancellationToken).ConfigureAwait(false);
            if (!edge.Select(h => h.ToBase64()).SequenceEqual(manifest.Edge, StringComparer.Ordinal))
            {
                return Refuse($"fork: the bundle's tree of the first {manifest.From} entries is not the imported one (its edge differs)");
            }
        }

        if (size >= manifest.TreeSize)
        {
            var root = await proofs.RootAsync(manifest.TreeSize, cancellationToken).ConfigureAwait(false);
            if (root.ToBase64() != manifest.RootHash)
            {
                return Refuse($"fork: the imported log's root at size {manifest.TreeSize} is not the bundle's");
            }
        }

        if (tenant is null)
        {
            var replica = new Tenant(tenantId, tenantId, Tenant.DefaultEdition, region, new Residency(Residency.Strict, []), Tenant.Replica, _clock.GetUtcNow());
            if (!await _tenants.TryCreateTenantAsync(replica, cancellationToken).ConfigureAwait(false))
            {
                return Refuse($"tenant {tenantId} was created meanwhile");
            }
        }

        var (appended, note, refusal) = await AppendAsync(bundle, manifest, size, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return Refuse(refusal);
        }

        var head = await _logs.GetTreeHeadAsync(tenantId, cancellationToken).ConfigureAwait(false);
        var rootAtSize = await proofs.RootAsync(manifest.TreeSize, cancellationToken).ConfigureAwait(false);
        if (head is null || head.Size < manifest.TreeSize || rootAtSize.ToBase64() != manifest.RootHash)
        {
            // The bundle verified before the import, so only a file changed underneath can get here.
            throw new InvalidOperationException("The imported entries do not hash to the bundle's root; the bundle file changed while it was imported.");
        }

        await _logs.SaveCheckpointAsync(tenantId, manifest.TreeSize, note!, _clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        return new BundleImportResult(
            false,
            appended == 0 ? $"nothing to import: the replica already holds [{manifest.From}, {manifest.To})" : $"imported {appended} entries",
            appended,
            head.Size);
    }

    private static BundleImportResult Refuse(string why) => new(true, why, 0, 0);

    // Second pass over the tar: entries below the imported size must be the stored ones (a crashed import's prefix),
    // the rest are appended in order with their exact bytes.
    private async Task<(ulong Appended, string? Note, string? Refusal)> AppendAsync(Stream bundle, BundleManifest manifest, ulong size, CancellationToken cancellationToken)
    {
        string? note = null;
        var appended = 0UL;
        var index = manifest.From;
        var batch = new List<PendingEntry>(BatchSize);
        var tar = new TarReader(bundle, leaveOpen: true);
        await using (tar.ConfigureAwait(false))
        {
            while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                if (entry.Name == BundleManifest.CheckpointName)
                {
                    using var reader = new StreamReader(entry.DataStream!, Encoding.UTF8);
                    note = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!entry.Name.StartsWith("entries/", StringComparison.Ordinal))
                {
                    continue;
                }

                var lines = new NdjsonLineReader(entry.DataStream!, BundleManifest.MaxLineBytes);
                await using (lines.ConfigureAwait(false))
                {
                    while ((await lines.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is (LineStatus.Line, var line))
                    {
                        var leaf = line.ToArray();
                        var leafHash = MerkleHasher.HashLeaf(leaf);
                        if (index < size)
                        {
                            var stored = await _logs.GetEntryAsync(manifest.Tenant, index, cancellationToken).ConfigureAwait(false);
                            if (stored is null || stored.LeafHash != leafHash)
                            {
                                return (0, null, $"fork: entry {index} of the bundle is not the imported one");
                            }
                        }
                        else
                        {
                            batch.Add(ToPending(leaf, leafHash));
                            if (batch.Count == BatchSize)
                            {
                                appended += await FlushAsync(manifest.Tenant, batch, cancellationToken).ConfigureAwait(false);
                            }
                        }

                        index++;
                    }
                }
            }
        }

        appended += await FlushAsync(manifest.Tenant, batch, cancellationToken).ConfigureAwait(false);
        return note is null ? (appended, null, "the bundle has no checkpoint member") : (appended, note, null);
    }

    private async Task<ulong> FlushAsync(string tenantId, List<PendingEntry> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return 0;
        }

        var outcome = await _logs.AppendAsync(new AppendRequest(tenantId, [.. batch], null), cancellationToken).ConfigureAwait(false);
        if (outcome is not Appended { Replayed: false } appended || appended.Receipts.Count != batch.Count)
        {
            throw new InvalidOperationException($"The store did not append the imported entries as given ({outcome.GetType().Name}).");
        }

        var count = (ulong)batch.Count;
        batch.Clear();
        return count;
    }

    // The store indexes entries by event id and receive time: both are top-level members of every ATP leaf. A leaf
    // without them (not written by ATP) still imports, under an id derived from its hash and the import time.
    private PendingEntry ToPending(byte[] leaf, Hash leafHash)
    {
        Guid? id = null;
        DateTimeOffset? receivedAt = null;
        try
        {
            var reader = new Utf8JsonReader(leaf);
            if (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
            {
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.ValueTextEquals("id"u8) ? "id" : reader.ValueTextEquals("receivedAt"u8) ? "receivedAt" : null;
                    reader.Read();
                    if (name is not null && reader.TokenType == JsonTokenType.String)
                    {
                        var text = reader.GetString();
                        if (name == "id" && Guid.TryParse(text, out var parsed))
                        {
                            id = parsed;
                        }
                        else if (name == "receivedAt" && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                        {
                            receivedAt = at;
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: imported under the fallbacks below.
        }

        return new PendingEntry(id ?? new Guid(leafHash.AsSpan()[..16]), false, leaf, leafHash, null, receivedAt ?? _clock.GetUtcNow());
    }
}
